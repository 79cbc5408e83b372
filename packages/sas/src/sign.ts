import { createHmac, hash } from 'node:crypto';
import { formatSas, type KeyName } from './format.ts';

/**
 * A rights policy's key, as Azure shows one (base64 text): each key name signs with its own key,
 * derived from the tenant's namespace key, so that changing `skn` in a key (say listen → send)
 * breaks its signature, as with Azure's per-policy keys. Azure tooling given the key name and this
 * text mints SAS keys that verify here.
 */
export function policyKey(namespaceKey: string, keyName: KeyName): string {
  return createHmac('sha256', namespaceKey).update(`keyway-sas-policy:${keyName}`).digest('base64');
}

/** Namespace keys whose derived policy keys are kept: a verifier asked about the same few tenants' keys again and again derives each once. */
const NAMESPACE_KEYS_KEPT = 10_000;
const policyHmacKeys = new Map<string, Partial<Record<KeyName, Buffer>>>();

/**
 * A policy key as Azure keys its HMAC: the UTF-8 bytes of its text, not the bytes the text encodes.
 * Derived once and kept in memory (where the namespace key already is); the cache starts over when
 * full, so it stays bounded whatever the number of tenants.
 */
function policyHmacKey(namespaceKey: string, keyName: KeyName): Buffer {
  let derived = policyHmacKeys.get(namespaceKey);
  if (derived === undefined) {
    if (policyHmacKeys.size >= NAMESPACE_KEYS_KEPT) policyHmacKeys.clear();
    derived = {};
    policyHmacKeys.set(namespaceKey, derived);
  }
  derived[keyName] ??= Buffer.from(policyKey(namespaceKey, keyName), 'utf8');
  return derived[keyName];
}

/**
 * HMAC-SHA256 over "<url-encoded resource URI>\n<expiry>" (the Azure string-to-sign) under the key
 * name's policy key: the signature's bytes. `encodedResource` is encodeURIComponent(resource).
 */
export function signatureBytes(namespaceKey: string, keyName: KeyName, encodedResource: string, expiry: number): Buffer {
  return createHmac('sha256', policyHmacKey(namespaceKey, keyName)).update(`${encodedResource}\n${expiry}`).digest();
}

/** The signature a SAS key for `keyName` signed with this namespace key carries (base64). */
function signature(namespaceKey: string, keyName: KeyName, resource: string, expiry: number): string {
  return signatureBytes(namespaceKey, keyName, encodeURIComponent(resource), expiry).toString('base64');
}

/**
 * A stable, non-secret id of an issued key: for audit and revocation, never the signature itself.
 * Derived from the signature's bytes, never from how a caller spelled them, so every spelling of
 * one key has one id (hashed in their canonical base64, which keeps the ids of keys already issued).
 */
export function sasKeyId(signatureBytes: Uint8Array): string {
  return keyIdOfSignature(Buffer.from(signatureBytes).toString('base64'));
}

/** sasKeyId of a signature already in its canonical base64. */
export function keyIdOfSignature(canonicalBase64: string): string {
  return hash('sha256', canonicalBase64, 'base64url').slice(0, 22);
}

export function signSas(namespaceKey: string, keyName: KeyName, resource: string, expiry: number): { sasKey: string; keyId: string } {
  const sig = signature(namespaceKey, keyName, resource, expiry);
  return { sasKey: formatSas({ resource, signature: sig, expiry, keyName }), keyId: keyIdOfSignature(sig) };
}
