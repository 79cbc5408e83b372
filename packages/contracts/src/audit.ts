import { z } from 'zod';

/**
 * The audit trail (design.md, "Audit"). An event records who did what to which tenant, when, with what
 * outcome, and links to the event before it in its stream by hash. Identifiers only: a token appears as
 * its jti, a SAS key as its key id, or as an HMAC of the token, never as the token itself.
 */

/** Audit actions are `noun.verb` (style rule 16): grant.success, refresh_family.revoked, sas_key.minted, ... */
const AUDIT_ACTION = /^[a-z_]+\.[a-z_]+$/;
export const AuditAction = z.string().max(64).regex(AUDIT_ACTION, 'must be noun.verb in lowercase letters and underscores');

export const AuditOutcome = z.enum(['success', 'failure', 'denied']);
export type AuditOutcome = z.infer<typeof AuditOutcome>;

/** One hash chain per stream; Keyway uses one stream per service ("pas", "pac", ...). */
export const AuditStream = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be 1-32 lowercase letters, digits or dashes');

/** Lowercase hex SHA-256; the first event of a stream links to 64 zeros. */
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256');

/** Sortable id: 10 Crockford base32 characters of milliseconds since the epoch, then 16 random ones (ULID layout). */
const AuditEventId = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a ULID');

// Printable text without control characters: values end up in Redis keys, SIEM lines and terminals.
const Text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters');

/** Small, flat, non-secret context (e.g. feed, rights, grant type); never a credential. */
const AuditDetail = z
  .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits or _ . -'), z.string().max(512))
  .refine((detail) => Object.keys(detail).length <= 20, 'at most 20 entries');

export const AuditEvent = z.strictObject({
  id: AuditEventId,
  /** position in the stream's chain: 1, 2, 3, ... without gaps */
  seq: z.number().int().positive(),
  time: z.iso.datetime(),
  service: AuditStream,
  action: AuditAction,
  outcome: AuditOutcome,
  tenant: Text(128).optional(),
  subject: Text(256).optional(),
  clientId: Text(256).optional(),
  /** a jti, a SAS key id, or an HMAC of a token ("hmac-sha256:..."); never a token */
  tokenId: Text(256).optional(),
  sourceAddress: Text(64).optional(),
  requestId: Text(128).optional(),
  /** an OAuth error code or a denial reason code */
  reason: Text(512).optional(),
  detail: AuditDetail.optional(),
  prevHash: Sha256Hex,
  hash: Sha256Hex,
});
export type AuditEvent = z.infer<typeof AuditEvent>;

const AuditOrder = z.enum(['newest', 'oldest']);

/** Query parameters of the audit API and CLI; `from` is inclusive, `to` exclusive. */
export const AuditQuery = z.object({
  stream: AuditStream.optional(),
  tenant: Text(128).optional(),
  subject: Text(256).optional(),
  action: AuditAction.optional(),
  outcome: AuditOutcome.optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  order: AuditOrder.default('newest'),
  /** opaque, from the previous page's nextCursor */
  cursor: z.string().max(200).optional(),
});
export type AuditQuery = z.input<typeof AuditQuery>;

/** The console's view of a tenant's trail: its newest events, as many as asked. */
export const ConsoleAuditQuery = AuditQuery.pick({ limit: true });

/** One page of a query; `nextCursor` is null after the last page. */
export const AuditPage = z.object({ events: z.array(AuditEvent), nextCursor: z.string().nullable() });
export type AuditPage = z.infer<typeof AuditPage>;

/**
 * Why a stream fails verification, at the first event that fails: a broken link of the chain, or a
 * chain that disagrees with the signed checkpoints (rewritten, truncated, restarted, forged checkpoint).
 */
export const AuditBreak = z.enum([
  'missing',
  'malformed',
  'seq_mismatch',
  'hash_mismatch',
  'prev_hash_mismatch',
  'column_mismatch',
  'checkpoint_mismatch',
  'truncated',
  'restarted',
  'bad_signature',
  'unsigned_anchor',
  'early_trim',
]);
export type AuditBreak = z.infer<typeof AuditBreak>;

/**
 * `keyway audit verify`: the chain from the retention anchor to the head, checked against the signed
 * checkpoints up to `signedSeq`, or its first failure: the event (id null when it is gone) and why.
 */
export const AuditVerifyResult = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), stream: AuditStream, checked: z.number().int(), anchorSeq: z.number().int(), headSeq: z.number().int(), signedSeq: z.number().int() }),
  z.object({
    ok: z.literal(false),
    stream: AuditStream,
    brokenAt: z.object({ seq: z.number().int(), id: AuditEventId.nullable() }),
    reason: AuditBreak,
    detail: z.string(),
  }),
]);
export type AuditVerifyResult = z.infer<typeof AuditVerifyResult>;

/**
 * The streams Keyway writes: PAS (logins, refreshes, revocations, signing keys), PAC (SAS keys), the
 * entitlement service (admin changes, CRM sync, authorization denials) and the IdP (its failed credential
 * verifications, aggregated per account and window). The topic service's stream (what a tenant's SAS
 * key did to a subscription's contents: dead letters resubmitted, replays), like the releases service's,
 * is verified once it holds events and is not exported to the tenants' audit feeds.
 */
export const AUDIT_STREAMS = ['pas', 'pac', 'entitlement', 'idp'] as const;

/** The feed a tenant is granted to receive its own audit trail on topic `audit` (the export). */
export const AUDIT_FEED = 'audit';

export const AuditVerifyQuery = z.object({
  stream: AuditStream.optional(),
  /** the retention the verifier expects: a signed trim of events younger than this many days is `early_trim`; 0 skips the check */
  min_retention_days: z.coerce.number().min(0).optional(),
});

/** `GET /v1/audit/verify` without a stream: every stream, intact only if each is. */
export const AuditVerifyReport = z.object({ ok: z.boolean(), streams: z.array(AuditVerifyResult) });
export type AuditVerifyReport = z.infer<typeof AuditVerifyReport>;
