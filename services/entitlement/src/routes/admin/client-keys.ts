import { Router } from 'express';
import { z } from 'zod';
import { ClientKeyId, ClientKeyRegistration, RegisteredClientKey, TenantId } from '@keyway/contracts';
import { ApiError, type IdpClient } from '@keyway/clients';
import { NotFound, OAuthError, parseInput, requireContentType, shapeResponse } from '@keyway/kit';
import type { PolicyRepository } from '../../policy/repository.ts';

const KeyPath = z.object({ tenant: TenantId, user: z.string().min(1).max(128), kid: ClientKeyId });

/** The IdP's refusals (a bad key, too many keys) are the operator's to fix: pass them on as they are. */
function passOnRefusal(err: unknown): never {
  if (err instanceof ApiError && err.status >= 400 && err.status < 500) throw new OAuthError(err.status, err.code, err.description);
  throw err;
}

/**
 * PUT and DELETE /v1/tenants/:tenant/users/:user/keys/:kid: the public keys a user's agent signs
 * RFC 7523 client assertions with (passwordless agents). The IdP holds them; this checks the user
 * belongs to the tenant first.
 */
export function clientKeyRoutes(policy: PolicyRepository, idp: IdpClient): Router {
  const router = Router();
  const path = '/v1/tenants/:tenant/users/:user/keys/:kid';

  const userOf = async (tenant: string, id: string) => {
    await policy.getTenant(tenant);
    const user = await policy.findUser(id);
    if (!user || user.tenant !== tenant) throw new NotFound(`user ${id} does not exist in tenant ${tenant}`);
    return user;
  };

  router.put(path, requireContentType('application/json'), async (req, res) => {
    const { tenant, user: id, kid } = parseInput(KeyPath, req.params, 'path');
    const { jwk } = parseInput(ClientKeyRegistration, req.body, 'body');
    const user = await userOf(tenant, id);
    const { created, ...registered } = await idp.registerKey(user.id, kid, jwk).catch(passOnRefusal);
    res.status(created ? 201 : 200).json(shapeResponse(RegisteredClientKey, registered));
  });

  router.delete(path, async (req, res) => {
    const { tenant, user: id, kid } = parseInput(KeyPath, req.params, 'path');
    const user = await userOf(tenant, id);
    await idp.removeKey(user.id, kid).catch(passOnRefusal);
    res.status(204).end();
  });
  return router;
}
