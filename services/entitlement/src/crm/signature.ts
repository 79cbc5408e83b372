import { createHmac, timingSafeEqual } from 'node:crypto';

/** A delivery signed more than this far from now (either way) is refused: it bounds how long a captured one can be replayed. */
export const CRM_TOLERANCE_SEC = 300;
const SCHEME = 'v1';
const TIMESTAMP = /^\d{1,12}$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/** `v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">` keyed with the shared secret (the Stripe scheme). */
export function crmSignature(secret: string, timestamp: string, rawBody: Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
}

/**
 * Checks a delivery's `X-Keyway-Timestamp` and `X-Keyway-Signature` headers against the raw body.
 * The signature header may list several `v1=` values (a sender rotating its secret signs with both);
 * one match suffices. Signatures are compared in constant time. Answers the reason for a refusal, or
 * undefined when the delivery is authentic and fresh.
 */
export function checkCrmSignature(input: { secret: string; timestamp?: string; signature?: string; rawBody: Buffer; nowSec: number }): string | undefined {
  const { timestamp, signature } = input;
  if (!timestamp || !TIMESTAMP.test(timestamp)) return 'missing or malformed timestamp';
  if (!signature) return 'missing signature';
  const expected = Buffer.from(crmSignature(input.secret, timestamp, input.rawBody), 'hex');
  const offered = signature
    .split(',')
    .map((part) => part.trim().split('='))
    .filter(([scheme, value]) => scheme === SCHEME && value !== undefined && HEX_SHA256.test(value))
    .map(([, value]) => Buffer.from(value!, 'hex'));
  if (!offered.some((candidate) => timingSafeEqual(candidate, expected))) return 'no matching v1 signature';
  // Checked after the signature, so the timestamp compared is the one the sender signed.
  if (Math.abs(input.nowSec - Number(timestamp)) > CRM_TOLERANCE_SEC) return `timestamp more than ${CRM_TOLERANCE_SEC} s from now`;
  return undefined;
}
