import { timingSafeEqual } from 'node:crypto';
import { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import type { z } from 'zod';
import { requestFields } from '@keyway/audit';
import { AuthorizationRequest, pasRoutes } from '@keyway/contracts';
import { bindRoute, InvalidRequest, OAuthError, outageAnswer, requireBodyType, toErrorBody } from '@keyway/kit';
import { scopeFor, type BrowserClient, type BrowserClientRegistry } from '../authorization/clients.ts';
import { errorPage, loginPage, sendPage } from '../authorization/pages.ts';
import { passkeyOffer, type PasskeyEnrolments } from '../authorization/passkeys.ts';
import { sha256, unguessable, type PendingAuthorization, type PendingAuthorizations } from '../authorization/pending-requests.ts';
import { codePage } from '../authorization/code-page.ts';
import { codeStep, passwordStep, SecondFactorPending, type SecondSteps } from '../authorization/second-step.ts';
import { signIn } from '../authorization/sign-in.ts';
import { requestedAccess } from '../grants/authorize.ts';
import type { GrantContext, GrantOrigin } from '../grants/context.ts';
import { sourceOf } from '../throttling/login-throttle.ts';
import { noStore, rejectDuplicateParams } from './token.ts';

/**
 * The browser's binding to the login pages it was served (CSRF defence with the pending request id
 * in the form): `__Host-` (Secure, Path=/, no Domain), HttpOnly, and SameSite=Lax, so it comes along
 * on the top-level navigation from the client to /oauth2/authorize but not on another site's POST.
 */
const BROWSER_COOKIE = '__Host-keyway-browser';
const BROWSER_COOKIE_VALUE = new RegExp(`(?:^|;\\s*)${BROWSER_COOKIE}=([A-Za-z0-9_-]{43})(?:;|$)`);

export const FORM_REFUSED = 'this sign-in form is not valid or has expired: start the sign-in again from the application';
const LOGIN_FAILED = 'The email or password is incorrect.';
const CODE_FAILED = 'The code is incorrect or has been used already.';

const browserOf = (req: Request): string | undefined => BROWSER_COOKIE_VALUE.exec(req.get('cookie') ?? '')?.[1];

/** A browser asks for the page; anything else (a program, a client that names no Accept) gets the JSON error body. */
const prefersHtml = (req: Request): boolean => req.accepts(['application/json', 'text/html']) === 'text/html';

/** RFC 6749 §4.1.2.1: error_description is %x20-21 / %x23-5B / %x5D-7E. */
const errorDescription = (text: string): string => text.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '').slice(0, 300);

const firstIssue = (error: z.ZodError): string => {
  const [first] = error.issues;
  return errorDescription(`${first?.path.join('.') ?? 'request'}: ${first?.message ?? 'invalid'}`);
};

/**
 * Redirects to the client (303: the browser follows with GET, also after the form's POST), every
 * answer with RFC 9207 `iss`, and `state` exactly as the client sent it when it sent one.
 */
export function redirectTo(res: Response, redirectUri: string, params: Record<string, string | undefined>): void {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  res.redirect(303, url.href);
}

/**
 * RFC 6749 §4.1.2.1 (and RFC 9700 §4.1.1): without a registered client_id and a redirect_uri that is
 * one of its registered ones exactly, nothing is redirected: the refusal is shown (a 400 page).
 */
function registeredRedirect(clients: BrowserClientRegistry, query: Record<string, unknown>): { client: BrowserClient; redirectUri: string } {
  const { client_id: clientId, redirect_uri: redirectUri } = query;
  if (typeof clientId !== 'string' || clientId === '') throw new InvalidRequest('client_id is required, once');
  const client = clients.get(clientId);
  if (!client) throw new InvalidRequest('the client_id is not a registered client', `client_id ${clientId.slice(0, 64)}`);
  if (typeof redirectUri !== 'string' || !client.redirect_uris.includes(redirectUri)) {
    throw new InvalidRequest('the redirect_uri is missing or is not registered for this client', `client_id ${clientId}`);
  }
  return { client, redirectUri };
}

/** Refusals of these routes are a page for a browser; the JSON error body otherwise (the kit's error handler). */
export const browserRefusal: ErrorRequestHandler = (err, req, res, next) => {
  const refusal = outageAnswer(err) ?? err;
  if (!(refusal instanceof OAuthError) || !prefersHtml(req) || res.headersSent) return next(err);
  req.log.info('request refused', { method: req.method, path: req.path, status: refusal.status, error: refusal.code, detail: refusal.detail });
  const { status, body, headers } = toErrorBody(refusal);
  res.set(headers);
  sendPage(res, status, errorPage(body.error, body.error_description));
};

/** The pending request a form names, posted by the browser that was served its page (CSRF), and its client. */
export async function boundRequest(context: GrantContext & { pending: PendingAuthorizations }, req: Request, id: string): Promise<{ request: PendingAuthorization; client: BrowserClient }> {
  const request = await context.pending.find(id);
  if (!request) throw new InvalidRequest(FORM_REFUSED, 'no such pending authorization request');
  requireBrowser(req, request.browser);
  const client = context.browserClients.get(request.client_id);
  if (!client) throw new InvalidRequest(FORM_REFUSED, 'the client is no longer registered');
  return { request, client };
}

/** The page's cookie must come with its form: another site cannot make the browser post it (CSRF). `bound`: the cookie's hash the page was served with. */
export function requireBrowser(req: Request, bound: string): void {
  const browser = browserOf(req);
  if (browser === undefined || !timingSafeEqual(Buffer.from(sha256(browser)), Buffer.from(bound))) {
    throw new InvalidRequest(FORM_REFUSED, 'the form came without the browser binding cookie of its page');
  }
}

/**
 * Runs a sign-in form's work (password or passkey) and answers: a redirect to the client with the
 * code, or with access_denied when the person is known but not authorized; the login page again for
 * a failed or throttled login, with one message whatever the reason. `run` answers undefined when it
 * has answered itself (a step before the code).
 */
export async function answerSignIn(
  context: GrantContext & { pending: PendingAuthorizations },
  req: Request,
  res: Response,
  pending: { id: string; request: PendingAuthorization; client: BrowserClient },
  email: string | undefined,
  run: (origin: GrantOrigin) => Promise<string | undefined>,
  failedMessage = LOGIN_FAILED,
  /** the code page's step: while the password step's sign-in is held, a failure shows the code page again */
  secondSteps?: SecondSteps,
): Promise<void> {
  const { request, client } = pending;
  const clientName = client.client_name ?? client.client_id;
  const redirectOrigin = new URL(request.redirect_uri).origin;
  const back = (params: Record<string, string>) => redirectTo(res, request.redirect_uri, { ...params, state: request.state, iss: context.settings.issuer });
  const origin = { fields: requestFields(req), source: sourceOf(req), log: req.log };
  try {
    const code = await run(origin);
    if (code !== undefined) back({ code });
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    // RFC 6749 §4.1.2.1: the person is known but not authorized for this client: the client is told so
    if (err.code === 'access_denied') {
      await context.pending.close(pending.id);
      return back({ error: 'access_denied', error_description: errorDescription(err.description) });
    }
    // the password was right and the account needs a code: the second step's page (authorization/second-step.ts)
    if (err instanceof SecondFactorPending) return sendPage(res, 200, codePage({ request: pending.id, client: clientName, action: pasRoutes.loginOtp.path }), redirectOrigin);
    // a failed or throttled login: the page again, with one message for a wrong password and an unknown account
    if ((err.code === 'invalid_grant' || err.status === 429) && prefersHtml(req)) {
      const message = err.status === 429 ? `Too many failed sign-ins. Try again in ${err.headers['Retry-After'] ?? 'a few'} seconds.` : failedMessage;
      res.set(err.headers);
      const page =
        secondSteps && (await secondSteps.find(pending.id))
          ? codePage({ request: pending.id, client: clientName, action: pasRoutes.loginOtp.path, message })
          : loginPage({ request: pending.id, client: clientName, action: pasRoutes.login.path, message, ...(email !== undefined && { email }) });
      return sendPage(res, err.status, page, redirectOrigin);
    }
    throw err;
  }
}

/**
 * GET /oauth2/authorize (RFC 6749 §4.1.1, RFC 7636 S256, RFC 9207) and the form of its login page,
 * POST /oauth2/login. A valid request is kept as a pending request and answered with the page; the
 * form's success redirects to the client with a single-use code (grants/authorization_code.ts).
 */
export function authorizationEndpoint(context: GrantContext & { pending: PendingAuthorizations; enrolments: PasskeyEnrolments; secondSteps: SecondSteps }): Router {
  const router = Router();
  const { issuer } = context.settings;

  bindRoute(router, pasRoutes.authorize, noStore, async (req, res) => {
    const query = req.query as Record<string, unknown>;
    const { client, redirectUri } = registeredRedirect(context.browserClients, query);
    const state = AuthorizationRequest.shape.state.safeParse(query.state).success ? (query.state as string | undefined) : undefined;
    const back = (error: string, description: string) => redirectTo(res, redirectUri, { error, error_description: errorDescription(description), state, iss: issuer });

    // RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
    const repeated = Object.entries(query).find(([, value]) => Array.isArray(value));
    if (repeated) return back('invalid_request', `parameter ${repeated[0]} is included more than once`);
    if (query.response_type === undefined) return back('invalid_request', 'response_type is required');
    if (query.response_type !== 'code') return back('unsupported_response_type', 'only response_type=code is supported');
    const parsed = AuthorizationRequest.safeParse(query);
    if (!parsed.success) return back('invalid_request', firstIssue(parsed.error));
    const scope = scopeFor(client, parsed.data.scope);
    if (scope === undefined) return back('invalid_scope', `the client may ask for: ${client.scope}`);
    try {
      requestedAccess(scope, context.settings);
    } catch (err) {
      if (err instanceof OAuthError) return back('invalid_scope', err.description);
      throw err;
    }

    let browser = browserOf(req);
    if (browser === undefined) {
      browser = unguessable();
      res.cookie(BROWSER_COOKIE, browser, { httpOnly: true, secure: true, sameSite: 'lax', path: '/' });
    }
    const pending = { client_id: client.client_id, redirect_uri: redirectUri, scope, state, code_challenge: parsed.data.code_challenge, browser: sha256(browser) };
    const id = await context.pending.open(pending, sourceOf(req));
    sendPage(res, 200, loginPage({ request: id, client: client.client_name ?? client.client_id, action: pasRoutes.login.path }), new URL(redirectUri).origin);
  });

  bindRoute(router, pasRoutes.login, noStore, requireBodyType(pasRoutes.login), rejectDuplicateParams, async (req, res, input) => {
    const form = input.body();
    const { request, client } = await boundRequest(context, req, form.request);
    const offer = form.offer_passkey ? passkeyOffer(context, request, form.email, req.log) : undefined;
    await answerSignIn(context, req, res, { id: form.request, request, client }, form.email, async (origin) => {
      const password = passwordStep(context, origin, { id: form.request, scope: request.scope }, { email: form.email, password: form.password });
      const code = await signIn(context, origin, { id: form.request, request }, password, offer?.hold);
      // signed in, the code held: the passkey enrolment offer first
      if (code === undefined) offer?.show(res);
      return code;
    });
  });
  // the second step (an account with a second factor, or scope operator): the code page's form
  bindRoute(router, pasRoutes.loginOtp, noStore, requireBodyType(pasRoutes.loginOtp), rejectDuplicateParams, async (req, res, input) => {
    const form = input.body();
    const { request, client } = await boundRequest(context, req, form.request);
    await answerSignIn(
      context,
      req,
      res,
      { id: form.request, request, client },
      undefined,
      (origin) => signIn(context, origin, { id: form.request, request }, codeStep(context, origin, form.request, form.otp)),
      CODE_FAILED,
      context.secondSteps,
    );
  });

  router.use(browserRefusal);
  return router;
}
