import { Router } from 'express';
import { z } from 'zod';
import { InvalidRequest, parseInput, requireContentType, requireService } from '@keyway/kit';
import { CredentialRegistration } from '@keyway/contracts';
import { hashPassword } from '../credentials/password-hash.ts';
import type { ClientKeyRepository } from '../credentials/client-keys.ts';
import type { CredentialRepository } from '../credentials/repository.ts';

/** PUT /v1/credentials/:sub (entitlement service only): register or replace a user's credentials; DELETE removes them. */
export function credentialRoutes(credentials: CredentialRepository, clientKeys: ClientKeyRepository): Router {
  const router = Router();
  router.put('/v1/credentials/:sub', requireService('entitlement'), requireContentType('application/json'), async (req, res) => {
    const registration = parseInput(CredentialRegistration, req.body, 'body');
    const { sub } = parseInput(z.object({ sub: z.string() }), req.params, 'path');
    if (sub !== registration.sub) throw new InvalidRequest('body.sub must match the path');
    const existing = await credentials.findBySub(sub);
    const passwordHash = registration.password ? await hashPassword(registration.password) : existing?.passwordHash;
    await credentials.save({ sub, tenant: registration.tenant, email: registration.email, passwordHash });
    res.json({ sub });
  });
  router.delete('/v1/credentials/:sub', requireService('entitlement'), async (req, res) => {
    const { sub } = parseInput(z.object({ sub: z.string().min(1).max(128) }), req.params, 'path');
    await clientKeys.removeAll(sub);
    await credentials.remove(sub);
    res.status(204).end();
  });
  return router;
}
