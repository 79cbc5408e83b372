import { createHmac, timingSafeEqual } from 'node:crypto';

/** A delivery signed more than this far from now (either way) is refused: it bounds how long a captured one can be replayed. */
const CRM_TOLERANCE_SEC = 300;
const SCHEME = 'v2';
const TIMESTAMP = /^\d{1,12}$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/**
 * The bytes a delivery's signature covers: everything the webhook acts on. `v2:<timestamp>:<delivery id>\n<raw body>`
 * (the delivery id as sent in X-Keyway-Delivery, empty when the id is only in the body, which is signed
 * anyway). Unambiguous: the timestamp is digits and a delivery id never holds a line break.
 */
function crmSignedBytes(timestamp: string, deliveryId: string, rawBody: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${SCHEME}:${timestamp}:${deliveryId}\n`, 'utf8'), rawBody]);
}

/** `<hex HMAC-SHA256 of crmSignedBytes(...)>` keyed with the shared secret; sent as `v2=<hex>`. */
export function crmSignature(secret: string, timestamp: string, deliveryId: string, rawBody: Buffer): string {
  return createHmac('sha256', secret)
    .update(crmSignedBytes(timestamp, deliveryId, rawBody))
    .digest('hex');
}

/** The X-Keyway-Signature value for a delivery (what the CRM, the CLI and the tests send). */
export const crmSignatureHeader = (secret: string, timestamp: string, deliveryId: string, rawBody: Buffer) => `${SCHEME}=${crmSignature(secret, timestamp, deliveryId, rawBody)}`;

/**
 * Checks a delivery's `X-Keyway-Timestamp`, `X-Keyway-Delivery` and `X-Keyway-Signature` headers
 * against the raw body. The signature header may list several `v2=` values (a sender rotating its
 * secret signs with both); one match suffices. `v1=` signatures (timestamp and body only, not the
 * delivery id) are no longer accepted: a captured delivery could be replayed under another id.
 * Signatures are compared in constant time. Answers the reason for a refusal, or undefined when the
 * delivery is authentic and fresh.
 */
export function checkCrmSignature(input: { secret: string; timestamp?: string; delivery?: string; signature?: string; rawBody: Buffer; nowSec: number }): string | undefined {
  const { timestamp, signature } = input;
  if (!timestamp || !TIMESTAMP.test(timestamp)) return 'missing or malformed timestamp';
  if (!signature) return 'missing signature';
  if ((input.delivery ?? '').includes('\n')) return 'malformed delivery id';
  const expected = Buffer.from(crmSignature(input.secret, timestamp, input.delivery ?? '', input.rawBody), 'hex');
  const parts = signature.split(',').map((part) => part.trim().split('='));
  const offered = parts.filter(([scheme, value]) => scheme === SCHEME && value !== undefined && HEX_SHA256.test(value)).map(([, value]) => Buffer.from(value!, 'hex'));
  if (offered.length === 0 && parts.some(([scheme]) => scheme === 'v1')) return 'v1 signatures do not cover the delivery id: sign with v2';
  if (!offered.some((candidate) => timingSafeEqual(candidate, expected))) return 'no matching v2 signature';
  // Checked after the signature, so the timestamp compared is the one the sender signed.
  if (Math.abs(input.nowSec - Number(timestamp)) > CRM_TOLERANCE_SEC) return `timestamp more than ${CRM_TOLERANCE_SEC} s from now`;
  return undefined;
}
