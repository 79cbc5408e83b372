import { createHash, randomBytes } from 'node:crypto';
import { RELEASES_CLIENT } from '@keyway/testkit';

/** A PKCE pair (RFC 7636, S256). */
export const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

/** An authorization URL at `pasUrl` as the releases client builds it; `params` override or (undefined) leave out a parameter. */
export function authorizationUrl(pasUrl: string, challenge: string, params: Record<string, string | undefined> = {}): string {
  const url = new URL('/oauth2/authorize', pasUrl);
  const all = {
    response_type: 'code',
    client_id: RELEASES_CLIENT.client_id,
    redirect_uri: RELEASES_CLIENT.redirect_uri,
    state: 'st-123',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...params,
  };
  for (const [name, value] of Object.entries(all)) if (value !== undefined) url.searchParams.set(name, value);
  return url.href;
}
