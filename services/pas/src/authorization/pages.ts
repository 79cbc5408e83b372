import type { Response } from 'express';
import { escapeHtml, htmlPage, sendHtml } from '@keyway/kit';

const page = (title: string, body: string): string => htmlPage(title, body);

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
  sendHtml(res, status, html, ["'self'", ...(redirectOrigin ? [redirectOrigin] : [])]);
}
