import { Router, type RequestHandler } from 'express';
import { audited, requestFields, type AuditLog } from '@keyway/audit';
import { pasRoutes, SigningKeyList, SigningKeyRotation } from '@keyway/contracts';
import { bindRoute, shapeResponse } from '@keyway/kit';
import type { Store } from '@keyway/store';
import type { KeyRing } from '@keyway/tokens';
import { loadKeyRing, type SharedKeyRing } from '../keys/ring.ts';
import { rotateSigningKeys, type RotationPolicy } from '../keys/rotate.ts';

const iso = (ms: number) => new Date(ms).toISOString();
const publishedKids = (ring: KeyRing) => ring.jwks().keys.map((k) => k.kid!);

/**
 * Operator API for the signing keys (operator certificate or operator bearer token: `authenticate`):
 * - GET /admin/v1/signing-keys: kid, state and dates of every key in the stored ring; no key material.
 * - POST /admin/v1/signing-keys/rotate: one rotation step (keys/rotate.ts has the rule), then this
 *   instance reloads at once so it signs with the new key; the others follow within a reload period.
 *   Recorded as signing_key.rotated with the operator as actor; when the trail cannot take it the
 *   answer is server_error (checked before rotating, so only a trail failing in between leaves a
 *   rotation unrecorded).
 */
export function signingKeysEndpoint(deps: {
  store: Store;
  ring: SharedKeyRing;
  policy: RotationPolicy;
  authenticate: RequestHandler;
  authenticateRotation: readonly RequestHandler[];
  audit: AuditLog;
}): Router {
  const router = Router();
  bindRoute(router, pasRoutes.signingKeys, deps.authenticate, async (_req, res) => {
    // The store, not this instance's copy: the listing shows what every instance converges to.
    const ring = await loadKeyRing(deps.store, deps.ring.kek);
    const now = Date.now();
    res.set('Cache-Control', 'no-store').json(
      shapeResponse(SigningKeyList, {
        active_kid: ring.active().kid,
        keys: ring.list().map((k) => ({
          kid: k.kid,
          state: k.state,
          createdAt: iso(k.createdAt),
          retireAfter: k.retireAfter === undefined ? undefined : iso(k.retireAfter),
          published: ring.isPublished(k, now),
        })),
      }),
    );
  });

  bindRoute(router, pasRoutes.rotateSigningKeys, ...deps.authenticateRotation, async (req, res) => {
    const answer = await audited({ audit: deps.audit }, { action: 'signing_key.rotated', fields: requestFields(req), writable: true, refusal: false }, async (audit) => {
      const { ring, retiredKid } = await rotateSigningKeys(deps.store, deps.ring.kek, deps.policy);
      await deps.ring.reload();
      const rotated = { active_kid: ring.active().kid, published_kids: publishedKids(ring) };
      req.log.info('signing_key.rotated', { activeKid: rotated.active_kid, retiringKid: retiredKid, publishedKids: rotated.published_kids });
      audit.note({ detail: { active_kid: rotated.active_kid, retired_kid: retiredKid, published_kids: rotated.published_kids.join(',').slice(0, 512) } });
      return rotated;
    });
    res.set('Cache-Control', 'no-store').json(shapeResponse(SigningKeyRotation, answer));
  });
  return router;
}
