import { Conflict } from '@keyway/kit';
import type { Keyring } from '@keyway/seal';
import type { Store } from '@keyway/store';
import type { KeyRing, TokenSettings } from '@keyway/tokens';
import { loadStoredKeyRing, saveKeyRing } from './ring.ts';

/** Covers the default reload period (30 s) plus PAC's default JWKS refetch cooldown (30 s), with room to spare. */
export const DEFAULT_SIGNING_KEY_LEAD_SEC = 90;

export interface RotationPolicy {
  /** how long a "next" key must have been published before a rotation may make it sign */
  leadMs: number;
  /** how long a key stays published after a rotation retires it */
  retireAfterMs: number;
}

/**
 * design.md ("Tokens and keys"): a new key is published before it signs; an old one is kept until
 * every token it signed has expired.
 *
 * - Lead: a "next" key may become active only once it has been in the stored ring for `leadSec`,
 *   which must be at least one reload period (by then every PAS instance has reloaded the ring and
 *   publishes it) and should add the time a verifier may keep a JWKS fetched before that (PAC
 *   refetches on an unknown kid at most once per cooldown). A rotation asked for earlier is refused,
 *   not deferred, so the operator sees when it can take effect.
 * - Retirement: the retired key stays published for the longest token lifetime, plus the clock
 *   skew verifiers accept past `exp` (the RFC 7519 §4.1.4 leeway), plus one reload period,
 *   because the other instances go on signing with it until they reload the rotated ring.
 */
export function rotationPolicy(settings: TokenSettings, options: { leadSec: number; reloadMs: number }): RotationPolicy {
  const longestLifetimeSec = Math.max(settings.accessTtlSec, settings.refreshTtlSec);
  return {
    leadMs: options.leadSec * 1000,
    retireAfterMs: (longestLifetimeSec + settings.clockToleranceSec) * 1000 + options.reloadMs,
  };
}

/**
 * One operator-triggered rotation: the published "next" key becomes active, the active one retires,
 * a fresh "next" key is published. Written with compare-and-set, so of two rotations racing on
 * different instances one wins and the other is refused (409) rather than silently merged.
 */
export async function rotateSigningKeys(store: Store, kek: Keyring, policy: RotationPolicy, now = Date.now()): Promise<{ ring: KeyRing; retiredKid: string }> {
  const { ring, raw } = await loadStoredKeyRing(store, kek);
  // loadStoredKeyRing always leaves a next key in the ring.
  const next = ring.next()!;
  const waitMs = next.createdAt + policy.leadMs - now;
  if (waitMs > 0) {
    const retryAfterSec = Math.ceil(waitMs / 1000);
    throw new Conflict(
      `the next signing key has not been published long enough to sign; rotate again in ${retryAfterSec} s`,
      `next kid ${next.kid} published ${now - next.createdAt} ms ago, lead ${policy.leadMs} ms`,
      { 'retry-after': String(retryAfterSec) },
    );
  }
  const retiredKid = ring.active().kid;
  await ring.rotate(policy.retireAfterMs, now);
  if ((await saveKeyRing(store, kek, ring, raw)) === undefined) {
    throw new Conflict('the signing keys changed meanwhile (another rotation); list them and retry', 'compare-and-set lost', { 'retry-after': '1' });
  }
  return { ring, retiredKid };
}
