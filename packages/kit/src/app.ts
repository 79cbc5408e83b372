import { randomUUID } from 'node:crypto';
import { metricsEndpoint, PROMETHEUS_CONTENT_TYPE } from '@keyway/telemetry/endpoint';
import { metrics } from '@opentelemetry/api';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import helmet from 'helmet';
import { NotFound, OAuthError, PayloadTooLarge, InvalidRequest, InvalidToken, TemporarilyUnavailable, UnsupportedMediaType, toErrorBody } from './errors.ts';
import { isDraining } from './https.ts';
import type { Logger } from './logger.ts';

const REQUEST_ID_HEADER = 'x-request-id';
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export interface BaseAppOptions {
  service: string;
  logger: Logger;
  readiness?: ReadinessCheck[];
  /** largest JSON / form body accepted */
  bodyLimit?: string;
  /**
   * Paths whose body the global JSON and form parsers leave unread, because the route reads the
   * exact bytes itself (express.raw), e.g. to check a signature computed over the raw body.
   */
  rawBodyPaths?: string[];
  /**
   * false: no body is parsed before the routes; each route that takes a body parses it itself
   * (jsonBody) after authenticating, so an unauthenticated upload is refused unread. Default true.
   */
  parseBodies?: boolean;
  /** the service's OpenAPI document, answered at GET /openapi.json (documentation: no authentication) */
  openapi?: object;
}

declare global {
  // biome-ignore lint/suspicious/noRedeclare: declaration merging: adds req.id and req.log to Express's own Request.
  namespace Express {
    interface Request {
      id: string;
      log: Logger;
    }
  }
}

/**
 * The base every service builds on: request ids, JSON and form parsers with size limits, health and
 * readiness. Call `finishApp` after mounting routes to add the 404 and the one error handler.
 */
export function createBaseApp(options: BaseAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');
  // First, so every answer carries them: 404s, refusals and 500s included.
  app.use(securityHeaders);

  // per app, not at import: the meter provider is registered (startTelemetry) before any app is made
  const duration = metrics.getMeter('keyway.http').createHistogram('http.server.request.duration', {
    description: 'time to answer a request, by route pattern, method and status',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60] },
  });
  app.use((req, res, next) => {
    const incoming = req.get(REQUEST_ID_HEADER);
    req.id = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    req.log = options.logger.child({ requestId: req.id });
    res.setHeader(REQUEST_ID_HEADER, req.id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      req.log.debug('request', { method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 });
      const route = routeOf(req);
      duration.record(ms / 1000, { 'http.request.method': req.method, 'http.response.status_code': res.statusCode, ...(route !== undefined && { 'http.route': route }) });
    });
    next();
  });

  const limit = options.bodyLimit ?? '64kb';
  // Routes match case-insensitively and with a trailing slash, so the raw-body paths are compared the same way.
  const rawBodyPaths = new Set((options.rawBodyPaths ?? []).map(normalizePath));
  const parse =
    (parser: RequestHandler): RequestHandler =>
    (req, res, next) =>
      rawBodyPaths.has(normalizePath(req.path)) ? next() : parser(req, res, next);
  if (options.parseBodies !== false) {
    app.use(parse(jsonBody(limit)));
    app.use(parse(express.urlencoded({ limit, extended: false, parameterLimit: 50 })));
  }

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', service: options.service });
  });
  app.get('/metrics', serveMetrics);
  app.get('/readyz', async (req, res) => {
    // SIGTERM (main.ts): out of the load balancer's rotation at once, whatever the dependencies say
    if (isDraining(req)) {
      res.status(503).json({ status: 'draining' });
      return;
    }
    const results = await Promise.all(
      (options.readiness ?? []).map(async ({ name, check }) => {
        try {
          await check();
          return { name, ok: true };
        } catch (err) {
          req.log.warn('readiness check failed', { check: name, err });
          return { name, ok: false };
        }
      }),
    );
    const ready = results.every((r) => r.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', checks: results });
  });
  const { openapi } = options;
  if (openapi) app.get('/openapi.json', (_req, res) => void res.json(openapi));
  return app;
}

/**
 * Security headers on every answer of every service (helmet). The APIs answer JSON to programs, so
 * their Content-Security-Policy forbids everything (`default-src 'none'`, no framing); the console
 * sets its own, stricter-for-a-page policy on its files, which replaces this one.
 * - HSTS (RFC 6797): one year, subdomains included; every listener is HTTPS only (https.ts).
 * - X-Content-Type-Options: nosniff; X-Frame-Options: DENY and CSP frame-ancestors 'none'.
 * - Referrer-Policy: no-referrer (URLs carry tenant and feed names).
 */
const helmetHeaders = helmet({
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] } },
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
  xFrameOptions: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
});

/**
 * helmet's answer does not depend on the request (no CSP nonces), so it is taken once at start and
 * replayed: the same headers, without its chain of a dozen middlewares on every request (the
 * delivery bench's hot routes, issue 12).
 */
function precomputed(middleware: typeof helmetHeaders): RequestHandler {
  const set: [string, string][] = [];
  const removed: string[] = [];
  const recorder = {
    setHeader: (name: string, value: unknown) => void set.push([name, String(value)]),
    removeHeader: (name: string) => void removed.push(name),
  };
  let done = false;
  middleware({} as never, recorder as never, (err?: unknown) => {
    if (err !== undefined) throw err;
    done = true;
  });
  // fail closed: a helmet that answered asynchronously or not at all would leave answers unprotected
  if (!done || set.length === 0) throw new Error('security headers could not be precomputed');
  return (_req, res, next) => {
    for (const [name, value] of set) res.setHeader(name, value);
    for (const name of removed) res.removeHeader(name);
    next();
  };
}

const securityHeaders = precomputed(helmetHeaders);

/**
 * The route pattern that answered (`/tenants/:tenant/topics/:topic/messages`), never the path itself:
 * ids in paths would make one series per tenant and lock token. None when no route matched (404).
 */
function routeOf(req: Request): string | undefined {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : undefined;
}

/**
 * GET /metrics (Prometheus text) only when the service was started with METRICS_TOKEN, and then
 * only for `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time); without the token
 * configured the path does not exist (404), as on a service without telemetry.
 */
const serveMetrics: RequestHandler = async (req, res, next) => {
  const endpoint = metricsEndpoint();
  if (endpoint === undefined) {
    next();
    return;
  }
  const presented = /^Bearer ([^\s]+)$/i.exec(req.get('authorization') ?? '')?.[1];
  if (presented === undefined || !endpoint.accepts(presented)) {
    // RFC 6750 §3: the scheme and realm a scraper must use
    next(new InvalidToken('GET /metrics needs the metrics bearer token', undefined, { 'WWW-Authenticate': 'Bearer realm="metrics", error="invalid_token"' }));
    return;
  }
  try {
    const text = await endpoint.scrape();
    res.set('Cache-Control', 'no-store').type(PROMETHEUS_CONTENT_TYPE).send(text);
  } catch (err) {
    next(err);
  }
};

const normalizePath = (path: string) => path.toLowerCase().replace(/\/+$/, '');

/** The JSON body parser every service uses, for a route that parses its body itself (parseBodies: false). */
export const jsonBody = (limit: string): RequestHandler => express.json({ limit, type: ['application/json', 'application/*+json'] });

/**
 * 415 unless the body is declared as one of the given media types (checked before parsing matters),
 * in UTF-8 if a charset is named: JSON is UTF-8 (RFC 8259 §8.1) and the parsers read nothing else,
 * so a route reading the raw bytes itself must not take `charset=latin1` either.
 */
export function requireContentType(...types: string[]): RequestHandler {
  return (req, _res, next) => {
    if (!req.is(types)) {
      next(new UnsupportedMediaType(`Content-Type must be ${types.join(' or ')}`));
      return;
    }
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(req.get('content-type') ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      next(new UnsupportedMediaType('the body must be UTF-8'));
      return;
    }
    next();
  };
}

const errorHandler =
  (logger: Logger): ErrorRequestHandler =>
  (err, req, res, _next) => {
    const mapped = mapFrameworkError(err);
    const { status, body, headers } = toErrorBody(mapped);
    const log = req.log ?? logger;
    if (status >= 500) log.error('request failed', { method: req.method, path: req.path, status, err });
    else log.info('request refused', { method: req.method, path: req.path, status, error: body.error, detail: mapped instanceof OAuthError ? mapped.detail : undefined });
    if (res.headersSent) {
      res.end();
      return;
    }
    res.set(headers).set('Cache-Control', 'no-store').status(status).json(body);
  };

/**
 * A store or broker that cannot be reached (StoreUnavailableError, BrokerUnavailableError) is an
 * outage, not a bug: whichever route it surfaces in, the answer is 503 temporarily_unavailable with
 * Retry-After, never 500. Matched by the errors' stable codes, so the kit needs neither package.
 */
const UNAVAILABLE_CODES = new Set(['ERR_STORE_UNAVAILABLE', 'ERR_BROKER_UNAVAILABLE', 'ERR_DB_UNAVAILABLE']);
const UNAVAILABLE_RETRY_AFTER_SEC = '5';

/** The 503 an outage answers with (a dependency that cannot be reached), or undefined when `err` is no outage. */
export function outageAnswer(err: unknown): OAuthError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof OAuthError || typeof code !== 'string' || !UNAVAILABLE_CODES.has(code)) return undefined;
  return new TemporarilyUnavailable('a dependency is unavailable, retry later', err instanceof Error ? err.message : code, { 'Retry-After': UNAVAILABLE_RETRY_AFTER_SEC });
}

/** body-parser signals bad input through err.type; those are the client's fault, not ours. */
function mapFrameworkError(err: unknown): unknown {
  const outage = outageAnswer(err);
  if (outage) return outage;
  const type = (err as { type?: string } | null)?.type;
  if (type === 'entity.too.large') return new PayloadTooLarge();
  if (type === 'entity.parse.failed') return new InvalidRequest('the body is not valid JSON');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return new UnsupportedMediaType('unsupported body encoding or charset');
  if (type === 'parameters.too.many') return new InvalidRequest('too many parameters');
  if (type === 'request.aborted') return new InvalidRequest('the request was aborted');
  const status = (err as { status?: unknown } | null)?.status;
  if (!(err instanceof OAuthError) && typeof status === 'number' && status >= 400 && status < 500) {
    return new InvalidRequest('the request could not be read');
  }
  return err;
}

export function finishApp(app: Express, logger: Logger): Express {
  app.use((_req, _res, next) => next(new NotFound('no such endpoint')));
  app.use(errorHandler(logger));
  return app;
}
