import { z } from 'zod';
import { AuthenticationContext, FeedRights, ReleaseRights } from '@keyway/contracts';
import type { Store } from '@keyway/store';
import { sha256, unguessable } from './pending-requests.ts';

export const CodeGrant = z.object({
  client_id: z.string(),
  redirect_uri: z.string(),
  code_challenge: z.string(),
  sub: z.string(),
  tid: z.string(),
  roles: z.array(z.string()),
  scope: z.string(),
  rights: FeedRights,
  /** scope releases: the release rights granted (absent in codes issued before releases existed) */
  releases: ReleaseRights.optional(),
  /** how and when the person signed in on the login page (absent in codes issued before it existed: a password at redemption) */
  authentication: AuthenticationContext.optional(),
});
/** What a code stands for: the client and redirect it was issued to, the PKCE challenge, and what the login was authorized for. */
export type CodeGrant = z.infer<typeof CodeGrant>;

const Redemption = z.object({ fid: z.string(), sub: z.string(), tid: z.string() });
type Redemption = z.infer<typeof Redemption>;

/**
 * Authorization codes (RFC 6749 §4.1.2): short-lived, single use, stored under their hash. A code
 * redeemed is remembered for its lifetime with the refresh family its tokens started, so a second
 * use revokes them (RFC 6749 §4.1.2 "SHOULD revoke ... all tokens previously issued based on that
 * authorization code").
 *
 * The order closes the race between a redemption and a replay: the redeemer starts the family, then
 * asks `reused`; the replay marks `reused`, then revokes the family. Whichever comes second sees the
 * other's write.
 */
export function authorizationCodes(store: Store, ttlSec: number) {
  const ttlMs = ttlSec * 1000;
  const codeKey = (hash: string) => `authz-code:${hash}`;
  const redeemedKey = (hash: string) => `authz-code-redeemed:${hash}`;
  const reusedKey = (hash: string) => `authz-code-reused:${hash}`;
  return {
    /** a new code and the id the trail knows it by (a prefix of its hash, never the code) */
    async issue(grant: CodeGrant): Promise<{ code: string; id: string }> {
      const code = unguessable();
      const hash = sha256(code);
      await store.set(codeKey(hash), JSON.stringify(grant), { ttlMs });
      return { code, id: codeId(hash) };
    },
    /** the code's grant, once: undefined when unknown, expired or already taken */
    async take(code: string): Promise<{ grant: CodeGrant; id: string } | undefined> {
      const hash = sha256(code);
      const raw = await store.take(codeKey(hash));
      return raw === null ? undefined : { grant: CodeGrant.parse(JSON.parse(raw)), id: codeId(hash) };
    },
    /** records the family the code's tokens start (before they are issued) */
    redeemed: async (code: string, redemption: Redemption): Promise<void> => void (await store.set(redeemedKey(sha256(code)), JSON.stringify(redemption), { ttlMs })),
    /** marks a second use; answers the redemption whose tokens it revokes, if the code was redeemed */
    async reuse(code: string): Promise<Redemption | undefined> {
      const hash = sha256(code);
      await store.set(reusedKey(hash), '1', { ttlMs });
      const raw = await store.get(redeemedKey(hash));
      return raw === null ? undefined : Redemption.parse(JSON.parse(raw));
    },
    /** whether a second use came while the code's tokens were being issued */
    reused: async (code: string): Promise<boolean> => (await store.get(reusedKey(sha256(code)))) !== null,
  };
}
export type AuthorizationCodes = ReturnType<typeof authorizationCodes>;

const codeId = (hash: string) => hash.slice(0, 16);
