import type { RequestHandler, Request } from 'express';
import { entitlementRoutes, expressPath, idpRoutes, pacRoutes, pasRoutes, type Route, topicRoutes } from '@keyway/contracts';
import { InvalidClient, AccessDenied } from './errors.ts';
import { peerService } from './https.ts';

/**
 * The service a verified client certificate names: the `<service>` of its SPIFFE ID
 * spiffe://<TRUST_DOMAIN>/<service> (one URI SAN), read when the connection was made (serveTls).
 * A certificate from our CA without it, or of another trust domain, is nobody, whatever its CN.
 */
export function callerService(req: Request): string | undefined {
  return peerService(req.socket);
}

/** An internal API's callers by `METHOD /express/path`: the routes that declare them (serviceOnly). */
const internalApis = (routes: Record<string, Route>): Record<string, readonly string[]> =>
  Object.fromEntries(Object.values(routes).flatMap((route) => (route.callers ? [[`${route.method.toUpperCase()} ${expressPath(route)}`, route.callers]] : [])));

/**
 * The mTLS access matrix, read from the route declarations (packages/contracts, `serviceOnly(callers,
 * …)`), where each internal API names the only service certificates (SPIFFE ID) that may call it; bindRoute
 * enforces it. The operator admin APIs are not here (requireOperator: the operator certificate or an
 * operator's access token). test/security/service-certificates.test.ts checks the running services
 * against the documented table.
 */
export const INTERNAL_APIS = {
  idp: internalApis(idpRoutes),
  entitlement: internalApis(entitlementRoutes),
  pas: internalApis(pasRoutes),
  pac: internalApis(pacRoutes),
  topic: internalApis(topicRoutes),
};

/**
 * Internal APIs answer only callers holding a certificate from our CA whose SPIFFE ID is allowed
 * (mutual TLS). A service never answers an unauthenticated caller (design.md).
 */
export function requireService(...allowed: string[]): RequestHandler {
  return (req, _res, next) => {
    const caller = callerService(req);
    if (!caller) return next(new InvalidClient('a client certificate issued by the Keyway CA is required'));
    if (!allowed.includes(caller)) return next(new AccessDenied('this service may not call this endpoint', `caller ${caller}`));
    next();
  };
}
