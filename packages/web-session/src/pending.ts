import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { tooManyRequests, windowLimiter } from '@keyway/kit';
import type { Store } from '@keyway/store';

/** How long a sign-in may take, from the link to the callback. */
export const PENDING_TTL_MS = 10 * 60_000;

const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url');
export const unguessable = (): string => randomBytes(32).toString('base64url');

const Pending = z.object({ verifier: z.string(), returnTo: z.string(), browser: z.string() });
type Pending = z.infer<typeof Pending>;

/**
 * The authorization requests this site started and has not seen come back: by the SHA-256 of their
 * `state`, each with its PKCE verifier (RFC 7636 §4.1), the path to go back to, and the hash of the
 * browser binding cookie it was started with. Taken once by the callback, whatever its outcome.
 */
export function pendingRequests(store: Store, signInsPerMinute: number) {
  const keyOf = (state: string) => `pending:${sha256(state)}`;
  // each sign-in started is held for PENDING_TTL_MS: this bounds what one address can make the store hold
  const starts = windowLimiter(store, { name: 'sign-ins', points: signInsPerMinute, windowMs: 60_000 });
  return {
    /** a new request of a browser at `source`: its state and the S256 challenge of its verifier; 429 past the source's sign-ins per minute */
    async open(returnTo: string, browser: string, source: string): Promise<{ state: string; challenge: string }> {
      const limit = await starts.hit(source);
      if (!limit.allowed) throw tooManyRequests(limit, `${limit.count} sign-ins started by ${source} in a minute`, 'too many sign-ins started from this address; retry later');
      const state = unguessable();
      // RFC 7636 §4.1: 32 random octets, base64url (43 characters)
      const verifier = unguessable();
      const pending: Pending = { verifier, returnTo, browser: sha256(browser) };
      await store.set(keyOf(state), JSON.stringify(pending), { ttlMs: PENDING_TTL_MS });
      return { state, challenge: sha256(verifier) };
    },
    /** the request of this state, spent; undefined when unknown, used, expired or started in another browser */
    async take(state: string, browser: string | undefined): Promise<Omit<Pending, 'browser'> | undefined> {
      const raw = await store.take(keyOf(state));
      if (raw === null || browser === undefined) return undefined;
      const { browser: bound, ...pending } = Pending.parse(JSON.parse(raw));
      return timingSafeEqual(Buffer.from(bound), Buffer.from(sha256(browser))) ? pending : undefined;
    },
  };
}
