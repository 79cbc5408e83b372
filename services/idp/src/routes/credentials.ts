import { Router } from 'express';
import { bindRoute, InvalidRequest, requireBodyType } from '@keyway/kit';
import { idpRoutes } from '@keyway/contracts';
import { hashPassword } from '../credentials/password-hash.ts';
import type { ClientKeyRepository } from '../credentials/client-keys.ts';
import type { InternalChanges } from '../credentials/internal-changes.ts';
import type { PasskeyRepository } from '../credentials/passkeys.ts';
import type { CredentialRepository } from '../credentials/repository.ts';
import type { SecondFactors } from '../credentials/second-factors.ts';

/**
 * PUT /v1/credentials/:sub (entitlement service only): register or replace a user's credentials; DELETE
 * removes them (and the person's keys and passkeys). Operator accounts need an operator's proof to be changed, and every change is in the
 * IdP's trail (credentials/internal-changes.ts).
 */
export function credentialRoutes(credentials: CredentialRepository, clientKeys: ClientKeyRepository, changes: InternalChanges, factors: SecondFactors, passkeys: PasskeyRepository): Router {
  const router = Router();
  bindRoute(router, idpRoutes.register, requireBodyType(idpRoutes.register), async (req, res, input) => {
    const registration = input.body();
    const { sub } = input.params();
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
  bindRoute(router, idpRoutes.remove, async (req, res, input) => {
    const { sub } = input.params();
    await changes.change(req, 'credentials.removed', async (step) => {
      const existing = await credentials.findBySub(sub);
      await clientKeys.removeAll(sub);
      await factors.remove(sub);
      const passkeysRemoved = await passkeys.removeAll(sub);
      await credentials.remove(sub);
      step.note({ tenant: existing?.tenant, subject: sub, detail: { existed: String(existing !== undefined), webauthn_credentials_removed: String(passkeysRemoved) } });
    });
    res.status(204).end();
  });
  return router;
}
