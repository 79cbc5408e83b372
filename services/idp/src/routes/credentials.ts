import { Router } from 'express';
import { z } from 'zod';
import { InvalidRequest, parseInput, requireContentType, requireInternal } from '@keyway/kit';
import { CredentialRegistration } from '@keyway/contracts';
import { hashPassword } from '../credentials/password-hash.ts';
import type { ClientKeyRepository } from '../credentials/client-keys.ts';
import type { InternalChanges } from '../credentials/internal-changes.ts';
import type { CredentialRepository } from '../credentials/repository.ts';

/**
 * PUT /v1/credentials/:sub (entitlement service only): register or replace a user's credentials; DELETE
 * removes them. Operator accounts need an operator's proof to be changed, and every change is in the
 * IdP's trail (credentials/internal-changes.ts).
 */
export function credentialRoutes(credentials: CredentialRepository, clientKeys: ClientKeyRepository, changes: InternalChanges): Router {
  const router = Router();
  router.put('/v1/credentials/:sub', requireInternal('idp', 'PUT /v1/credentials/:sub'), requireContentType('application/json'), async (req, res) => {
    const registration = parseInput(CredentialRegistration, req.body, 'body');
    const { sub } = parseInput(z.object({ sub: z.string() }), req.params, 'path');
    if (sub !== registration.sub) throw new InvalidRequest('body.sub must match the path');
    await changes.change(req, 'credentials.set', async (step) => {
      const existing = await credentials.findBySub(sub);
      const operator = existing ? await changes.proofFor(req, step, 'credentials.set', sub, [existing.tenant, registration.tenant]) : undefined;
      const passwordHash = registration.password ? await hashPassword(registration.password) : existing?.passwordHash;
      await credentials.save({ sub, tenant: registration.tenant, email: registration.email, passwordHash });
      step.note({
        tenant: registration.tenant,
        subject: sub,
        detail: {
          created: String(!existing),
          login_set: registration.password !== undefined ? 'password' : 'unchanged',
          email_changed: String(existing !== undefined && existing.email !== registration.email),
          ...(existing && existing.tenant !== registration.tenant && { previous_tenant: existing.tenant }),
          ...(operator && { operator }),
        },
      });
    });
    res.json({ sub });
  });
  router.delete('/v1/credentials/:sub', requireInternal('idp', 'DELETE /v1/credentials/:sub'), async (req, res) => {
    const { sub } = parseInput(z.object({ sub: z.string().min(1).max(128) }), req.params, 'path');
    await changes.change(req, 'credentials.removed', async (step) => {
      const existing = await credentials.findBySub(sub);
      await clientKeys.removeAll(sub);
      await credentials.remove(sub);
      step.note({ tenant: existing?.tenant, subject: sub, detail: { existed: String(existing !== undefined) } });
    });
    res.status(204).end();
  });
  return router;
}
