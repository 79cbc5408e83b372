import { createHmac, randomBytes } from 'node:crypto';
import { AuditEvent, type AuditOutcome } from '@keyway/contracts';
import { SECRET_FIELD } from '@keyway/kit';
import { AuditEventError } from './errors.ts';

export type { AuditEvent, AuditOutcome } from '@keyway/contracts';

/** What a caller says about an action; the log adds id, time, service, seq and the chain hashes. */
export interface AuditInput {
  /** noun.verb: grant.success, login.failed, refresh_family.revoked, sas_key.minted, ... */
  action: string;
  outcome: AuditOutcome;
  tenant?: string | undefined;
  subject?: string | undefined;
  clientId?: string | undefined;
  /** a jti, a SAS key id, or `tokenHash(token, key)`; never the token */
  tokenId?: string | undefined;
  sourceAddress?: string | undefined;
  requestId?: string | undefined;
  /** an OAuth error code or a denial reason code */
  reason?: string | undefined;
  detail?: Record<string, string> | undefined;
}

/** An event before it joins a chain: everything but seq, prevHash and hash. */
export type AuditDraft = Omit<AuditEvent, 'seq' | 'prevHash' | 'hash'>;

const DraftSchema = AuditEvent.omit({ seq: true, prevHash: true, hash: true });
const INPUT_FIELDS = new Set(['service', 'action', 'outcome', 'tenant', 'subject', 'clientId', 'tokenId', 'sourceAddress', 'requestId', 'reason', 'detail']);

// Values that are credentials whatever field they sit in (style rule 11): a JWS/JWE compact token
// (its header is base64url JSON, so it starts with "eyJ"), a SAS key or its signature, a bearer
// header, a PEM private key.
const CREDENTIAL_VALUE = [/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\./, /SharedAccessSignature|(?:^|[?&\s])sig=/i, /\bBearer\s+\S/i, /-----BEGIN [A-Z ]*PRIVATE KEY-----/];

/** Whether a string is recognisably a credential (token, SAS key, bearer header, private key). */
export function looksSecret(value: string): boolean {
  return CREDENTIAL_VALUE.some((pattern) => pattern.test(value));
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The 10-character, lexicographically sortable time part of an event id (48-bit milliseconds, ULID layout). */
export function eventIdTime(ms: number): string {
  let out = '';
  let rest = Math.max(0, Math.floor(ms));
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD.charAt(rest % 32) + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

/** A ULID-layout id: sorts by creation time, so index members that start with it sort by time. */
function newEventId(ms: number): string {
  // 256 is a multiple of 32, so each byte masked to 5 bits is uniform
  const random = [...randomBytes(16)].map((b) => CROCKFORD.charAt(b & 31)).join('');
  return eventIdTime(ms) + random;
}

/**
 * An HMAC of a token, for when a token must be identifiable in the trail but has no jti (e.g. an
 * unparseable token presented for revocation). Keyed, unlike a plain hash, so that whoever reads the
 * trail cannot test guesses against it; whoever holds the key can check "was it this token" (Vault
 * audit-hash). The result fits in `tokenId`.
 */
export function tokenHash(token: string, key: string | Uint8Array): string {
  if (Buffer.byteLength(key) < 32) throw new TypeError('tokenHash needs a key of at least 32 bytes');
  return `hmac-sha256:${createHmac('sha256', key).update(token).digest('base64url')}`;
}

/** Refuses secret-looking field names and values; messages name the field, never echo the value. */
function refuseSecrets(input: Record<string, unknown>): void {
  for (const [field, value] of Object.entries(input)) {
    if (!INPUT_FIELDS.has(field) && SECRET_FIELD.test(field)) {
      throw new AuditEventError(`audit field "${field}" looks like a secret: record its jti, key id or tokenHash() instead`);
    }
    if (typeof value === 'string' && looksSecret(value)) {
      throw new AuditEventError(`audit field "${field}" holds what looks like a credential: record its jti, key id or tokenHash() instead`);
    }
  }
  const detail = input.detail;
  if (detail === null || typeof detail !== 'object') return;
  for (const [key, value] of Object.entries(detail)) {
    if (SECRET_FIELD.test(key)) throw new AuditEventError(`audit detail "${key}" looks like a secret and is refused`);
    if (typeof value === 'string' && looksSecret(value)) {
      throw new AuditEventError(`audit detail "${key}" holds what looks like a credential and is refused`);
    }
  }
}

/**
 * Builds a validated event (without its chain position). Secrets never cross into audit (style rule
 * 11): a field or detail key named like a secret (the logger's redaction rule) or a value that looks
 * like a credential is refused with AuditEventError, so the mistake fails loudly in tests instead of
 * being silently redacted.
 */
export function auditEvent(input: AuditInput & { service: string }, now: number = Date.now()): AuditDraft {
  refuseSecrets(input as unknown as Record<string, unknown>);
  // undefined fields are dropped so the stored JSON is exactly what gets hashed
  const fields = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const result = DraftSchema.safeParse({ ...fields, id: newEventId(now), time: new Date(now).toISOString() });
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new AuditEventError(`audit event ${issue?.path.join('.') || 'input'}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}
