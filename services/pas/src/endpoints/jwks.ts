import { Router } from 'express';
import type { KeyRing } from '@keyway/tokens';

/** GET /.well-known/jwks.json: next, active and retiring public keys. */
export function jwksEndpoint(ring: KeyRing): Router {
  const router = Router();
  router.get('/.well-known/jwks.json', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=60').json(ring.jwks());
  });
  return router;
}
