import { Router } from 'express';
import { ClientPublicJwk, idpRoutes, SshKeyHolder } from '@keyway/contracts';
import { bindRoute, InvalidGrant, InvalidRequest, requireBodyType, shapeResponse } from '@keyway/kit';
import { parsePublicKeyLine, SshFormatError } from '@keyway/ssh';
import type { ClientKeyRepository } from '../credentials/client-keys.ts';
import type { CredentialRepository } from '../credentials/repository.ts';
import type { VerificationGuard } from '../credentials/verification-guard.ts';

/** The public JWK an OpenSSH public key line holds: @keyway/ssh admits only the two types a registered key can be. */
function jwkOfLine(line: string): ClientPublicJwk {
  try {
    return ClientPublicJwk.parse(parsePublicKeyLine(line).key.export({ format: 'jwk' }));
  } catch (err) {
    if (err instanceof SshFormatError) throw new InvalidRequest(`body.public_key: ${err.message}`);
    throw err;
  }
}

/**
 * POST /v1/credentials/ssh-key/verify (releases only): issue 17's SFTP front authenticates a user by an
 * SSH public key they registered as a private_key_jwt key. The SFTP server has verified the SSH
 * signature; this says whether the key is the user's. One answer, invalid_grant, for a key the user
 * does not hold, an unknown user and a removed one (whose keys went with the credentials); failures
 * are throttled and recorded per user under the verification guard, as assertions are.
 */
export function sshKeyRoutes(credentials: CredentialRepository, keys: ClientKeyRepository, guard: VerificationGuard): Router {
  const router = Router();
  bindRoute(router, idpRoutes.verifySshKey, requireBodyType(idpRoutes.verifySshKey), async (_req, res, input) => {
    const { sub, public_key } = input.body();
    const jwk = jwkOfLine(public_key);
    // its own counter: a stray SSH key (clients offer every key they hold) does not lock the agent's token logins
    const account = `ssh:${sub}`;
    await guard.admit(account);
    // both read whatever the answer, so an unknown user costs what a wrong key does
    const [credential, kid] = await Promise.all([credentials.findBySub(sub), keys.holding(sub, jwk)]);
    if (!credential || kid === undefined) {
      await guard.failed(account, credential ? 'unregistered_ssh_key' : 'unknown_account');
      throw new InvalidGrant('the public key is not registered for the user', credential ? 'the user holds no such key' : 'no credentials for the sub');
    }
    res.json(shapeResponse(SshKeyHolder, { sub, tenant: credential.tenant, kid }));
  });
  return router;
}
