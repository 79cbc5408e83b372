import { setTimeout as sleep } from 'node:timers/promises';
import { Router, type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import type { AuditLog } from '@keyway/audit';
import { ApiError } from '@keyway/clients';
import { OAuthError, outageAnswer, TemporarilyUnavailable, type Logger, type TlsSource } from '@keyway/kit';
import type { Store } from '@keyway/store';
import type { AccessClaims } from '@keyway/tokens';
import { authorizationServer, type AuthorizationServer } from './authorization-server.ts';
import { cookies } from './cookies.ts';
import { callbackEndpoint } from './endpoints/callback.ts';
import { logoutEndpoint } from './endpoints/logout.ts';
import { sessionSettings, type BrowserSessionOptions, type SessionSettings } from './options.ts';
import { sendRefusalPage } from './pages.ts';
import { pendingRequests, unguessable } from './pending.ts';
import { returnPath } from './return-path.ts';
import { sessionStore, type LoadedSession, type SessionStore } from './sessions.ts';

/** Who is signed in, from the access token PAS issued the session. */
export interface Principal {
  sub: string;
  tenant: string;
  roles: string[];
  /** for calls to PAC and the resource APIs on the person's behalf; never to be logged */
  accessToken: string;
  claims: AccessClaims;
}

export interface BrowserSessionDeps {
  /** the site's hot state (Redis, or the in-memory store in development) */
  store: Store;
  logger: Logger;
  /** when given, logins and logouts are audit events (session.started, session.ended) */
  audit?: AuditLog | undefined;
  /** the site's own TLS material: PAS is trusted by its CA bundle as it is renewed, instead of the settings' fixed caPem */
  tls?: TlsSource;
}

/** Refresh an access token that expires within this: a request never leaves with one about to lapse. */
const REFRESH_AHEAD_SEC = 60;
/** the refresh lock outlives PAS's answer (the HTTP client's 10 s timeout) */
const REFRESH_LOCK_MS = 15_000;
/** how long a request waits for another one's refresh of the same session */
const REFRESH_WAIT_MS = 12_000;

/** A browser asks for a page; a program (or a client naming no Accept) gets JSON. */
const prefersHtml = (req: Request): boolean => req.accepts(['application/json', 'text/html']) === 'text/html';

/** What the endpoints share. */
export interface SessionContext {
  settings: SessionSettings;
  server: AuthorizationServer;
  sessions: SessionStore;
  pending: ReturnType<typeof pendingRequests>;
  cookies: ReturnType<typeof cookies>;
  audit: AuditLog | undefined;
}

/**
 * The browser session of a server-rendered site, an OAuth 2.0 public client of PAS (authorization
 * code with PKCE S256, RFC 9207 iss): `router` serves the callback and logout, `requireSession`
 * guards the pages (a navigation without a session goes through the login and back), `principal`
 * tells who is signed in, refreshing the access token with the refresh token as it runs out.
 */
export function browserSession(options: BrowserSessionOptions, deps: BrowserSessionDeps) {
  const settings = sessionSettings(options);
  const context: SessionContext = {
    settings,
    server: authorizationServer(settings, deps.tls),
    sessions: sessionStore(deps.store.scoped('web-session'), settings),
    pending: pendingRequests(deps.store.scoped('web-session'), settings.signInsPerMinute),
    cookies: cookies(settings.cookieName),
    audit: deps.audit,
  };
  const { server, sessions, pending } = context;
  const refreshing = new Map<string, Promise<LoadedSession | undefined>>();
  const resolved = new WeakMap<Request, Promise<Principal | undefined>>();

  const fresh = (session: LoadedSession): boolean => session.record.accessExp - Date.now() / 1000 > REFRESH_AHEAD_SEC;

  /**
   * RFC 9700 §4.14: PAS spends a refresh token at its first use, and a second use revokes the whole
   * family. So one request of a session refreshes, in this process (single flight) and across
   * instances (a lock in the store); the others wait for its result and take the rotated pair.
   */
  async function refreshOnce(id: string, log: Logger): Promise<LoadedSession | undefined> {
    const deadline = Date.now() + REFRESH_WAIT_MS;
    for (;;) {
      const current = await sessions.load(id);
      if (!current || fresh(current)) return current;
      const release = await sessions.lock(current, REFRESH_LOCK_MS);
      if (release) {
        try {
          // another instance may have refreshed between the read and the lock
          const locked = await sessions.load(id);
          if (!locked || fresh(locked)) return locked;
          return await sessions.replaceTokens(locked, await server.refresh(locked.tokens.refreshToken));
        } catch (err) {
          if (err instanceof ApiError && err.code === 'invalid_grant') {
            // revoked, expired, or its family ended at PAS (strict mode): the session is over
            log.info('session.ended', { reason: 'refresh_refused', sub: current.record.sub, tenant: current.record.tid });
            await sessions.remove(id);
            return undefined;
          }
          // PAS unavailable: an access token that has not expired yet still serves this request
          if (outageOf(err) && current.record.accessExp > Date.now() / 1000) return current;
          throw err;
        } finally {
          await release();
        }
      }
      if (Date.now() > deadline)
        throw new TemporarilyUnavailable('the session could not be refreshed in time, retry', `session ${current.record.sub}: refresh lock held too long`, { 'Retry-After': '2' });
      await sleep(50);
    }
  }

  async function current(id: string, log: Logger): Promise<LoadedSession | undefined> {
    const session = await sessions.load(id);
    if (!session) return undefined;
    if (fresh(session)) {
      await sessions.touch(session);
      return session;
    }
    let running = refreshing.get(session.key);
    if (!running) {
      running = refreshOnce(id, log).finally(() => refreshing.delete(session.key));
      refreshing.set(session.key, running);
    }
    return running;
  }

  async function resolve(req: Request): Promise<Principal | undefined> {
    const id = context.cookies.session(req);
    const session = id === undefined ? undefined : await current(id, req.log ?? deps.logger);
    if (!session) return undefined;
    const { claims, accessToken } = session.tokens;
    return { sub: claims.sub, tenant: claims.tid, roles: claims.roles, accessToken, claims };
  }

  /** Who this request's session belongs to (undefined: no session, or it has ended); once per request. */
  function principal(req: Request): Promise<Principal | undefined> {
    let answer = resolved.get(req);
    if (!answer) {
      answer = resolve(req);
      resolved.set(req, answer);
    }
    return answer;
  }

  /** RFC 6749 §4.1.1 with RFC 7636 §4.3: the authorization request, its state and verifier kept here. */
  const startLogin: RequestHandler = async (req, res) => {
    // one binding per browser, so sign-ins started in several tabs at once each find theirs; only one this site made is kept
    const known = context.cookies.binding(req);
    const browser = known !== undefined && /^[A-Za-z0-9_-]{43}$/.test(known) ? known : unguessable();
    const { state, challenge } = await pending.open(returnPath(req.originalUrl), browser, req.ip ?? req.socket.remoteAddress ?? 'unknown');
    const url = new URL(await server.authorizationEndpoint());
    const params = {
      response_type: 'code',
      client_id: settings.clientId,
      redirect_uri: settings.redirectUri,
      scope: settings.scope,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    };
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    context.cookies.setBinding(res, browser);
    res.set('Cache-Control', 'no-store').redirect(302, url.href);
  };

  const requireSession: RequestHandler = async (req, res, next) => {
    try {
      if (await principal(req)) return next();
      // a cookie whose session has ended is dropped
      if (context.cookies.session(req) !== undefined) context.cookies.clearSession(res);
      if ((req.method === 'GET' || req.method === 'HEAD') && prefersHtml(req)) return await startLogin(req, res, next);
      // RFC 9110 §11.6.1: a 401 names a challenge; no scheme is registered for cookie sessions, so this one names the site
      next(new OAuthError(401, 'login_required', 'sign in first: open this link in a browser', undefined, { 'WWW-Authenticate': `Cookie realm="${settings.origin}"` }));
    } catch (err) {
      next(err);
    }
  };

  const router = Router();
  router.use(callbackEndpoint(context), logoutEndpoint(context), browserRefusal);
  return { router, principal, requireSession };
}

const outageOf = (err: unknown): boolean => outageAnswer(err) !== undefined || (err instanceof OAuthError && err.status === 503);

/** Refusals of the callback and logout are a page for a browser, the JSON error body otherwise (the site's error handler). */
const browserRefusal: ErrorRequestHandler = (err, req, res, next) => {
  const refusal = outageAnswer(err) ?? err;
  if (!(refusal instanceof OAuthError) || !prefersHtml(req) || res.headersSent) return next(err);
  req.log?.info('request refused', { method: req.method, path: req.path, status: refusal.status, error: refusal.code, detail: refusal.detail });
  res.set(refusal.headers);
  sendRefusalPage(res, refusal.status, refusal.code, refusal.description);
};
