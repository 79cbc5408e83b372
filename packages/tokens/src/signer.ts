import type { JWK } from 'jose';
import { SIGNING_ALG, type SigningKey } from './keyring.ts';

/**
 * What issuing a token needs of a signing key, and no more: the seam where a KMS or Vault Transit
 * key can stand in for a local one without the grants or token code changing.
 */
export interface Signer {
  readonly kid: string;
  readonly alg: typeof SIGNING_ALG;
  readonly publicJwk: JWK;
  /**
   * The signature over the JWS Signing Input (RFC 7515 §5.1, the ASCII of header.payload) in its JWS
   * form: for ES256, R || S, 32 octets each (RFC 7518 §3.4), not DER as KMS APIs answer it.
   */
  sign(signingInput: Uint8Array): Promise<Uint8Array>;
}

/** A signer over a private key held in this process (unsealed from PAS's store). */
export function localSigner(key: SigningKey): Signer {
  return {
    kid: key.kid,
    alg: SIGNING_ALG,
    publicJwk: key.publicJwk,
    // WebCrypto ECDSA answers R || S already (IEEE P1363), the JWS form.
    sign: async (input) => new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey, input)),
  };
}
