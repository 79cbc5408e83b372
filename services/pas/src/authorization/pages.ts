import type { Response } from 'express';
import { escapeHtml, htmlPage, sendHtml } from '@keyway/kit';

/** The login pages' one script (CSP script-src 'self'): WebAuthn for passkeys, nothing else. */
const PASSKEY_SCRIPT = '/oauth2/assets/passkeys.js';

const page = (title: string, body: string): string => htmlPage(title, body, 'Keyway', { scripts: [PASSKEY_SCRIPT] });

export interface LoginPage {
  /** the pending authorization request the form belongs to */
  request: string;
  /** the client's name, as registered */
  client: string;
  /** where the form posts (the login route's path) */
  action: string;
  /** why the page is shown again (a failed login), in words that tell no account apart */
  message?: string;
  /** the email typed before, kept in the field */
  email?: string;
}

export const loginPage = ({ request, client, action, message, email }: LoginPage): string =>
  page(
    'Sign in',
    `<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(client)}</strong></p>
${message ? `<p role="alert">${escapeHtml(message)}</p>\n` : ''}<form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="request" value="${escapeHtml(request)}">
<p><label for="email">Email</label><br><input id="email" name="email" type="email" autocomplete="username" required maxlength="254" value="${escapeHtml(email ?? '')}"></p>
<p><label for="password">Password</label><br><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"></p>
<p><button type="submit">Sign in</button></p>
</form>
${passkeySignIn(request)}`,
  );

/** "Sign in with a passkey": the script asks PAS for options, the browser for the passkey, and posts it in the hidden form. */
const passkeySignIn = (request: string): string => `<form id="passkey-sign-in" method="post" action="/oauth2/passkey/login" data-options="/oauth2/passkey/options">
<input type="hidden" name="request" value="${escapeHtml(request)}">
<input type="hidden" name="credential" value="">
<p><button type="button" data-passkey="sign-in" hidden>Sign in with a passkey</button></p>
<p class="passkey-status" role="status"></p>
</form>`;

export interface EnrolmentPage {
  /** the held sign-in the offer belongs to */
  enrolment: string;
  /** WebAuthn registration options (PublicKeyCredentialCreationOptionsJSON) from the IdP */
  options: object;
  /** the account, as the authenticator will show it */
  email: string;
  message?: string;
}

/** After a password sign-in of someone without a passkey: offer one ("Add a passkey to this account"), or go on ("Not now"). */
export const enrolmentPage = ({ enrolment, options, email, message }: EnrolmentPage): string =>
  page(
    'Add a passkey',
    `<h1>Add a passkey to this account</h1>
<p>Next time, sign in as <strong>${escapeHtml(email)}</strong> with your device’s screen lock or security key instead of a password.</p>
${message ? `<p role="alert">${escapeHtml(message)}</p>\n` : ''}<form id="passkey-enrolment" method="post" action="/oauth2/passkey/enrolment" data-options="${escapeHtml(JSON.stringify(options))}">
<input type="hidden" name="enrolment" value="${escapeHtml(enrolment)}">
<input type="hidden" name="credential" value="" disabled>
<p><button type="button" data-passkey="register" hidden>Add a passkey</button> <button type="submit" name="not_now" value="1">Not now</button></p>
<p class="passkey-status" role="status"></p>
</form>`,
  );

export const errorPage = (error: string, description: string): string =>
  page(
    'Sign-in error',
    `<h1>The sign-in cannot continue</h1>
<p role="alert">${escapeHtml(description)}</p>
<p>Error: <code>${escapeHtml(error)}</code>. Go back to the application and start again.</p>`,
  );

/**
 * Sends a page whose form posts to PAS only. `redirectOrigin`: where the form's answer redirects; CSP
 * form-action also governs the redirects that follow a form submission, so the client's origin is allowed too.
 */
export function sendPage(res: Response, status: number, html: string, redirectOrigin?: string): void {
  // the passkey script is PAS's own file and talks to PAS only
  sendHtml(res, status, html, ["'self'", ...(redirectOrigin ? [redirectOrigin] : [])], { script: ["'self'"], connect: ["'self'"] });
}
