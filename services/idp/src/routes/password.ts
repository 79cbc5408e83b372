import { Router } from 'express';
import { InvalidGrant, parseInput, requireContentType, requireInternal, shapeResponse } from '@keyway/kit';
import { PasswordCheck, Subject } from '@keyway/contracts';
import { dummyHash, verifyPassword } from '../credentials/password-hash.ts';
import type { CredentialRepository } from '../credentials/repository.ts';

/** POST /v1/credentials/password/verify (PAS only): one answer for a wrong password and an unknown user. */
export function passwordRoutes(credentials: CredentialRepository): Router {
  const router = Router();
  router.post('/v1/credentials/password/verify', requireInternal('idp', 'POST /v1/credentials/password/verify'), requireContentType('application/json'), async (req, res) => {
    const { email, password } = parseInput(PasswordCheck, req.body, 'body');
    const credential = await credentials.findByEmail(email);
    const matches = await verifyPassword(password, credential?.passwordHash ?? (await dummyHash()));
    if (!credential?.passwordHash || !matches) {
      throw new InvalidGrant('the username or password is incorrect', credential ? 'wrong password' : 'unknown user');
    }
    res.json(shapeResponse(Subject, credential));
  });
  return router;
}
