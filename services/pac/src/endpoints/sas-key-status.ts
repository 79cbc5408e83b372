import { Router } from 'express';
import { pacRoutes, SasKeyStatus } from '@keyway/contracts';
import { bindRoute, shapeResponse, TemporarilyUnavailable } from '@keyway/kit';
import type { IssuedRegistry, IssuedSasKey } from '../issued/registry.ts';
import { type HolderCheck, refusalOf } from '../sas/holder-check.ts';

/**
 * GET /internal/v1/sas-keys/:keyId (topic service only, mTLS): may this issued key still be used?
 * Revoked (by a change event, or earlier here) stays revoked; otherwise the entitlement service is
 * asked about the key's holder on its feed now (issue 11), so a key stops at the topic service's next
 * check even when the change event that revokes it has not reached PAC. A refusal revokes the key for
 * good, as the event would have. A key PAC did not mint (an operator's, signed with the policy keys)
 * has no holder to ask about: only revocation by event applies to it. Lenient revocation (no
 * `holders`): keys last until they expire. A key bound to a DPoP key names its thumbprint (`jkt`).
 */
export function sasKeyStatusEndpoint(issued: IssuedRegistry, holders: HolderCheck | undefined, onRevoked: (key: IssuedSasKey, reason: string) => Promise<void>): Router {
  const router = Router();
  bindRoute(router, pacRoutes.sasKeyStatus, async (_req, res, input) => {
    const { keyId } = input.params();
    const key = await issued.find(keyId);
    // the DPoP key it is bound to: the topic service then requires its proofs (RFC 9449)
    res.set('Cache-Control', 'no-store').json(shapeResponse(SasKeyStatus, { key_id: keyId, revoked: await isRevoked(keyId, key), ...(key?.jkt !== undefined && { jkt: key.jkt }) }));
  });

  async function isRevoked(keyId: string, key: IssuedSasKey | undefined): Promise<boolean> {
    if (await issued.isRevoked(keyId)) return true;
    if (!holders || !key) return false;
    const decision = await holders({ sub: key.sub, tenant: key.tenant, feed: key.topic }).catch((err: unknown) => {
      throw new TemporarilyUnavailable('the key cannot be checked right now; retry later', `entitlement: ${String(err)}`, { 'retry-after': '5' });
    });
    const refusal = refusalOf(decision, key.rights);
    if (!refusal) return false;
    if (await issued.revokeKey(key)) await onRevoked(key, `entitlement.${refusal}`);
    return true;
  }
  return router;
}
