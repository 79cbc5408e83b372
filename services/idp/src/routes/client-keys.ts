import { createPublicKey } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { ClientKeyId, ClientKeyRegistration, RegisteredClientKey } from '@keyway/contracts';
import { InvalidRequest, NotFound, parseInput, requireContentType, requireService, shapeResponse } from '@keyway/kit';
import type { ClientKeyRepository } from '../credentials/client-keys.ts';
import type { CredentialRepository } from '../credentials/repository.ts';

const KeyPath = z.object({ sub: z.string().min(1).max(128), kid: ClientKeyId });

/**
 * PUT and DELETE /v1/credentials/:sub/keys/:kid (entitlement service only): the public keys an agent
 * authenticates with instead of a password (RFC 7523 private_key_jwt). Only public keys are held here.
 */
export function clientKeyRoutes(credentials: CredentialRepository, keys: ClientKeyRepository): Router {
  const router = Router();
  const path = '/v1/credentials/:sub/keys/:kid';

  router.put(path, requireService('entitlement'), requireContentType('application/json'), async (req, res) => {
    const { sub, kid } = parseInput(KeyPath, req.params, 'path');
    const { jwk } = parseInput(ClientKeyRegistration, req.body, 'body');
    if (jwk.kid !== undefined && jwk.kid !== kid) throw new InvalidRequest('body.jwk.kid must match the path');
    try {
      // The coordinates must be a point on the curve; the schema checks only their shape.
      createPublicKey({ key: jwk, format: 'jwk' });
    } catch {
      throw new InvalidRequest(`body.jwk: not a valid ${jwk.crv} public key`);
    }
    if (!(await credentials.findBySub(sub))) throw new NotFound(`no credentials are registered for ${sub}`);
    const created = await keys.register(sub, kid, jwk);
    res.status(created ? 201 : 200).json(shapeResponse(RegisteredClientKey, { sub, kid, alg: jwk.alg }));
  });

  router.delete(path, requireService('entitlement'), async (req, res) => {
    const { sub, kid } = parseInput(KeyPath, req.params, 'path');
    if (!(await keys.remove(sub, kid))) throw new NotFound(`no key ${kid} is registered for ${sub}`);
    res.status(204).end();
  });
  return router;
}
