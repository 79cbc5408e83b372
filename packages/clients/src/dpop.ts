import type { AxiosResponse } from 'axios';
import { createDpopProof, DPOP_NONCE_HEADER, type DpopKey } from '@keyway/tokens';

/**
 * DPoP (RFC 9449) on the agent's side, shared by its PAS, PAC and topic clients: its key, and the last
 * nonce each server handed out (§8: a nonce is the server's, so it is kept per origin).
 */
export interface DpopSigner {
  readonly key: DpopKey;
  /** a fresh proof (new jti, now) for one request: htm, htu = the URL called, ath of the credential sent with it (§4.2) */
  proof(method: string, url: string, credential?: string): Promise<string>;
  /** keeps the answer's DPoP-Nonce; true when the answer refused the proof for want of that nonce (send again, once) */
  observe(url: string, response: Pick<AxiosResponse, 'status' | 'headers' | 'data'>): boolean;
}

export function dpopSigner(key: DpopKey, now: () => number = Date.now): DpopSigner {
  const nonces = new Map<string, string>();
  return {
    key,
    proof: (method, url, credential) => createDpopProof(key, { htm: method, htu: url, credential, nonce: nonces.get(new URL(url).origin) }, now()),
    observe(url, response) {
      const nonce = response.headers?.[DPOP_NONCE_HEADER];
      if (typeof nonce === 'string' && nonce.length > 0) nonces.set(new URL(url).origin, nonce);
      return typeof nonce === 'string' && nonce.length > 0 && asksForNonce(response);
    },
  };
}

/** RFC 9449 §8 use_dpop_nonce: in the error body (PAS and PAC, §8.1) or the WWW-Authenticate challenge (a resource server, §9) */
function asksForNonce(response: Pick<AxiosResponse, 'status' | 'headers' | 'data'>): boolean {
  if (response.status !== 400 && response.status !== 401) return false;
  const challenge = response.headers?.['www-authenticate'];
  if (typeof challenge === 'string' && /\berror="use_dpop_nonce"/.test(challenge)) return true;
  return (response.data as { error?: unknown } | null)?.error === 'use_dpop_nonce';
}
