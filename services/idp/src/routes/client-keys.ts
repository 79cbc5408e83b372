import { createPublicKey } from 'node:crypto';
import { Router } from 'express';
import { idpRoutes, RegisteredClientKey } from '@keyway/contracts';
import { bindRoute, InvalidRequest, NotFound, requireBodyType, shapeResponse } from '@keyway/kit';
import type { ClientKeyRepository } from '../credentials/client-keys.ts';
import type { InternalChanges } from '../credentials/internal-changes.ts';
import type { CredentialRepository } from '../credentials/repository.ts';

/**
 * PUT and DELETE /v1/credentials/:sub/keys/:kid (entitlement service only): the public keys an agent
 * authenticates with instead of a password (RFC 7523 private_key_jwt). Only public keys are held here.
 * A key for an operator account needs an operator's proof; every change is in the IdP's trail.
 */
export function clientKeyRoutes(credentials: CredentialRepository, keys: ClientKeyRepository, changes: InternalChanges): Router {
  const router = Router();
  bindRoute(router, idpRoutes.registerKey, requireBodyType(idpRoutes.registerKey), async (req, res, input) => {
    const { sub, kid } = input.params();
    const { jwk } = input.body();
    if (jwk.kid !== undefined && jwk.kid !== kid) throw new InvalidRequest('body.jwk.kid must match the path');
    try {
      // The coordinates must be a point on the curve; the schema checks only their shape.
      createPublicKey({ key: jwk, format: 'jwk' });
    } catch {
      throw new InvalidRequest(`body.jwk: not a valid ${jwk.crv} public key`);
    }
    const created = await changes.change(req, 'client_key.registered', async (step) => {
      const account = await credentials.findBySub(sub);
      if (!account) throw new NotFound(`no credentials are registered for ${sub}`);
      const operator = await changes.proofFor(req, step, 'client_key.registered', sub, [account.tenant]);
      const registered = await keys.register(sub, kid, jwk);
      step.note({ tenant: account.tenant, subject: sub, detail: { kid, alg: jwk.alg, created: String(registered), ...(operator && { operator }) } });
      return registered;
    });
    res.status(created ? 201 : 200).json(shapeResponse(RegisteredClientKey, { sub, kid, alg: jwk.alg }));
  });

  bindRoute(router, idpRoutes.removeKey, async (req, res, input) => {
    const { sub, kid } = input.params();
    await changes.change(req, 'client_key.removed', async (step) => {
      if (!(await keys.remove(sub, kid))) throw new NotFound(`no key ${kid} is registered for ${sub}`);
      step.note({ tenant: (await credentials.findBySub(sub))?.tenant, subject: sub, detail: { kid } });
    });
    res.status(204).end();
  });
  return router;
}
