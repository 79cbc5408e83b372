import type { TLSSocket } from 'node:tls';
import type { RequestHandler, Request } from 'express';
import { InvalidClient, AccessDenied } from './errors.ts';

/** The service name a verified client certificate names (its CN), or undefined. */
export function callerService(req: Request): string | undefined {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return undefined;
  const cn = socket.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}

/**
 * The mTLS access matrix: every internal API, and the only service certificates (CN) that may call
 * it. Least privilege: a certificate is listed only where its service makes that call. The operator
 * admin APIs are not here (requireOperator: the operator certificate or an operator's access token).
 * test/security/service-certificates.test.ts checks the running services against this table.
 */
export const INTERNAL_APIS = {
  idp: {
    'POST /v1/credentials/password/verify': ['pas'],
    'POST /v1/credentials/assertion/verify': ['pas'],
    'PUT /v1/credentials/:sub': ['entitlement'],
    'DELETE /v1/credentials/:sub': ['entitlement'],
    'PUT /v1/credentials/:sub/keys/:kid': ['entitlement'],
    'DELETE /v1/credentials/:sub/keys/:kid': ['entitlement'],
  },
  entitlement: {
    'POST /v1/authorize': ['pas'],
    // the topic service receives only from the subscriptions an operator listed
    'GET /internal/v1/tenants/:tenant/feeds/:feed/subscriptions': ['topic'],
    // the audit service exports a tenant's trail only to a tenant granted the audit feed
    'GET /internal/v1/tenants/:tenant/feeds/:feed': ['audit'],
  },
  pas: {
    // PAC: refresh tokens at mint time and operator tokens at its admin API; the entitlement and audit services: operator tokens.
    'POST /oauth2/introspect': ['pac', 'entitlement', 'audit'],
  },
  pac: {
    'POST /internal/v1/sas-keys/verify': ['topic'],
    'GET /internal/v1/sas-keys/:keyId': ['topic'],
  },
  topic: {
    // the tenants' audit feeds, published by Keyway itself through the same checks and quotas as a SAS publish
    'POST /internal/v1/tenants/:tenant/topics/:topic/messages': ['audit'],
  },
} as const satisfies Record<string, Record<string, readonly string[]>>;

type InternalApis = typeof INTERNAL_APIS;

/**
 * Internal APIs answer only callers holding a certificate from our CA whose CN is allowed
 * (mutual TLS). A service never answers an unauthenticated caller (design.md).
 */
function requireService(...allowed: string[]): RequestHandler {
  return (req, _res, next) => {
    const caller = callerService(req);
    if (!caller) return next(new InvalidClient('a client certificate issued by the Keyway CA is required'));
    if (!allowed.includes(caller)) return next(new AccessDenied('this service may not call this endpoint', `caller ${caller}`));
    next();
  };
}

/** requireService with the callers the access matrix (INTERNAL_APIS) lists for this service's API. */
export function requireInternal<S extends keyof InternalApis>(service: S, api: keyof InternalApis[S]): RequestHandler {
  const callers = INTERNAL_APIS[service][api] as readonly string[];
  return requireService(...callers);
}
