import { createHash, createHmac } from 'node:crypto';
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

/**
 * HMAC-SHA256 over "<url-encoded resource URI>\n<expiry>", base64 (the Azure string-to-sign), keyed
 * as Azure keys it: with the UTF-8 bytes of the policy key's text, not the bytes the text encodes.
 */
function signWithPolicyKey(policyKeyText: string, resource: string, expiry: number): string {
  return createHmac('sha256', Buffer.from(policyKeyText, 'utf8'))
    .update(`${encodeURIComponent(resource)}\n${expiry}`)
    .digest('base64');
}

/** The signature a SAS key for `keyName` signed with this namespace key carries. */
export function signature(namespaceKey: string, keyName: KeyName, resource: string, expiry: number): string {
  return signWithPolicyKey(policyKey(namespaceKey, keyName), resource, expiry);
}

/**
 * A stable, non-secret id of an issued key: for audit and revocation, never the signature itself.
 * Derived from the signature's bytes, never from how a caller spelled them, so every spelling of
 * one key has one id (hashed in their canonical base64, which keeps the ids of keys already issued).
 */
export function sasKeyId(signatureBytes: Uint8Array): string {
  return createHash('sha256').update(Buffer.from(signatureBytes).toString('base64')).digest('base64url').slice(0, 22);
}

export function signSas(namespaceKey: string, keyName: KeyName, resource: string, expiry: number): { sasKey: string; keyId: string } {
  const sig = signature(namespaceKey, keyName, resource, expiry);
  return { sasKey: formatSas({ resource, signature: sig, expiry, keyName }), keyId: sasKeyId(Buffer.from(sig, 'base64')) };
}
