import { Router } from 'express';
import { pasRoutes } from '@keyway/contracts';
import { bindRoute } from '@keyway/kit';
import type { CurrentKeyRing } from '../keys/ring.ts';

/** GET /.well-known/jwks.json: next, active and retiring public keys of the ring as last reloaded. */
export function jwksEndpoint(ring: CurrentKeyRing): Router {
  const router = Router();
  bindRoute(router, pasRoutes.jwks, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=60').json(ring.current().jwks());
  });
  return router;
}
