import { Router } from 'express';
import { z } from 'zod';
import { SasKeyStatus } from '@keyway/contracts';
import { parseInput, requireInternal, shapeResponse } from '@keyway/kit';
import type { IssuedRegistry } from '../issued/registry.ts';

/** GET /internal/v1/sas-keys/:keyId (topic service only, mTLS): has this issued key been revoked? */
export function sasKeyStatusEndpoint(issued: IssuedRegistry): Router {
  const router = Router();
  router.get('/internal/v1/sas-keys/:keyId', requireInternal('pac', 'GET /internal/v1/sas-keys/:keyId'), async (req, res) => {
    const { keyId } = parseInput(z.object({ keyId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) }), req.params, 'path');
    res.set('Cache-Control', 'no-store').json(shapeResponse(SasKeyStatus, { key_id: keyId, revoked: await issued.isRevoked(keyId) }));
  });
  return router;
}
