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
 * Internal APIs answer only callers holding a certificate from our CA whose CN is allowed
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
