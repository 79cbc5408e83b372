import { Router, type RequestHandler } from 'express';
import { SigningKeyList, SigningKeyRotation } from '@keyway/contracts';
import { shapeResponse } from '@keyway/kit';
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
 */
export function signingKeysEndpoint(deps: { store: Store; ring: SharedKeyRing; policy: RotationPolicy; authenticate: RequestHandler }): Router {
  const router = Router();
  router.get('/admin/v1/signing-keys', deps.authenticate, async (_req, res) => {
    // The store, not this instance's copy: the listing shows what every instance converges to.
    const ring = await loadKeyRing(deps.store);
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

  router.post('/admin/v1/signing-keys/rotate', deps.authenticate, async (req, res) => {
    const { ring, retiredKid } = await rotateSigningKeys(deps.store, deps.policy);
    await deps.ring.reload();
    const answer = { active_kid: ring.active().kid, published_kids: publishedKids(ring) };
    req.log.info('signing_key.rotated', { activeKid: answer.active_kid, retiringKid: retiredKid, publishedKids: answer.published_kids });
    res.set('Cache-Control', 'no-store').json(shapeResponse(SigningKeyRotation, answer));
  });
  return router;
}
