import { Router } from 'express';
import { pacRoutes, SasKeyStatus } from '@keyway/contracts';
import { bindRoute, shapeResponse } from '@keyway/kit';
import type { IssuedRegistry } from '../issued/registry.ts';

/** GET /internal/v1/sas-keys/:keyId (topic service only, mTLS): has this issued key been revoked? */
export function sasKeyStatusEndpoint(issued: IssuedRegistry): Router {
  const router = Router();
  bindRoute(router, pacRoutes.sasKeyStatus, async (_req, res, input) => {
    const { keyId } = input.params();
    res.set('Cache-Control', 'no-store').json(shapeResponse(SasKeyStatus, { key_id: keyId, revoked: await issued.isRevoked(keyId) }));
  });
  return router;
}
