import { Router, type RequestHandler } from 'express';
import { audited, requestFields, type AuditLog, type SecurityMetrics } from '@keyway/audit';
import { DpopKeyRevocation, pasRoutes } from '@keyway/contracts';
import { bindRoute, shapeResponse, type Logger } from '@keyway/kit';
import type { RevokedDpopKeys } from '../dpop/revoked-keys.ts';
import type { RefreshFamilies } from '../families/refresh-family.ts';

const REASON = 'dpop_key_revoked';

/**
 * POST /admin/v1/dpop-keys/{jkt}/revoke (operator): an agent's DPoP key pair (RFC 9449, its RFC 7638
 * thumbprint) is revoked, in this order so that a crash anywhere leaves a retry that finishes the job:
 * 1. PAS refuses its proofs from now on (records store: survives losing Redis), so no new login or
 *    refresh binds to it while the rest runs;
 * 2. `dpop_key.revoked` goes to PAC through PAS's outbox, once per tenant of the families bound to the
 *    key, so PAC revokes the SAS keys bound to it;
 * 3. each refresh family bound to it is revoked (family.revoked, as for any family revocation).
 * Recorded as dpop_key.revoked with the operator as actor; idempotent.
 */
export function dpopKeysEndpoint(deps: {
  revoked: RevokedDpopKeys;
  families: RefreshFamilies;
  announce: (tenant: string, jkt: string, reason: string) => Promise<void>;
  authenticate: RequestHandler;
  audit: AuditLog;
  metrics: SecurityMetrics;
  logger: Logger;
}): Router {
  const router = Router();
  bindRoute(router, pasRoutes.revokeDpopKey, deps.authenticate, async (req, res, input) => {
    const { jkt } = input.params();
    const answer = await audited({ audit: deps.audit }, { action: 'dpop_key.revoked', fields: requestFields(req), writable: true, refusal: false }, async (audit) => {
      const first = await deps.revoked.add(jkt, REASON);
      const bound = await deps.families.ofDpopKey(jkt);
      const tenants = [...new Set(bound.map((f) => f.tid))];
      for (const tenant of tenants) await deps.announce(tenant, jkt, REASON);
      let revoked = 0;
      for (const family of bound) {
        if (!(await deps.families.revoke(family.fid, REASON))) continue;
        revoked++;
        deps.metrics.tokensRevoked.add(1, { tenant: family.tid, reason: REASON });
        // taking access away never waits for the trail (revocation/on-entitlement-change.ts)
        await deps.audit
          .record({ action: 'refresh_family.revoked', outcome: 'success', tenant: family.tid, subject: family.sub, reason: REASON, detail: { family: family.fid, jkt } })
          .catch(() => undefined);
      }
      deps.logger.info('dpop_key.revoked', { jkt, families: revoked, tenants });
      audit.note({
        ...(tenants.length === 1 && { tenant: tenants[0] }),
        detail: { jkt, revoked_families: String(revoked), tenants: tenants.join(',').slice(0, 512), first_revocation: String(first) },
      });
      return { jkt, revoked_families: revoked };
    });
    res.set('Cache-Control', 'no-store').json(shapeResponse(DpopKeyRevocation, answer));
  });
  return router;
}
