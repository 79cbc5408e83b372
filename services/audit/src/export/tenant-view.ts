import { createHash } from 'node:crypto';
import type { AuditEvent } from '@keyway/audit';

/**
 * What a tenant's own audit feed shows of an event about it (issue 9: the feed showed operators' ids,
 * token ids and internal addresses). The rule, allow-list driven so a field added later stays hidden
 * until it is decided on:
 * - always: id, seq, time, service, action, outcome, tenant, requestId, reason, prevHash, hash;
 * - an operator's action (admin API, key rotation): subject "operator", and nothing that names the
 *   operator: no clientId, tokenId, sourceAddress, actor_tenant;
 * - its own users' actions (logins, refreshes, SAS keys, denials): subject and clientId as recorded;
 *   token ids (tokenId, refresh_jti, spent_jti, family) replaced by a per-tenant pseudonym, so the
 *   tenant can follow one token or family through its events without learning the id;
 * - sourceAddress only where the tenant's user called the service directly (PAS, PAC); entitlement
 *   events hold the address of a service, the CRM or an operator, never the user's;
 * - detail: only the entries listed in DETAIL (facts about the tenant's own users, feeds and keys);
 *   error_detail (style rule 3: for the vendor's logs and audit), CRM delivery ids and change-event
 *   ids are dropped.
 * The vendor's own tenant (operators' home; events without a tenant go there too) sees every field.
 * A redacted event lists what was changed in `redacted`: its hash is the stored event's (a reference
 * the vendor can verify), which a tenant cannot recompute from the redacted copy.
 */
export type TenantAuditRecord = Partial<AuditEvent> & Pick<AuditEvent, 'id' | 'seq' | 'hash' | 'prevHash'> & { redacted?: string[] };

const KEPT = ['id', 'seq', 'time', 'service', 'action', 'outcome', 'tenant', 'requestId', 'reason', 'prevHash', 'hash'] as const;

/** detail entries a tenant sees as recorded */
const DETAIL = new Set([
  'grant_type',
  'scope',
  'rights',
  'role',
  // what an authorization was asked for: feeds or operator (POST /v1/authorize)
  'access',
  'roles',
  'removed_roles',
  'feed',
  'feeds',
  'topic',
  'tier',
  'subscription',
  'name',
  'by',
  'status',
  'user',
  'users',
  'email_changed',
  'initial_login',
  'kid',
  'replaced',
  'expires_at',
  'rotated',
  'signing_with',
  'type',
  'username',
]);
/** detail entries naming a token or a token family: pseudonymized per tenant */
const TOKEN_DETAIL = new Set(['refresh_jti', 'spent_jti', 'family']);
/** services the tenant's users call directly, whose sourceAddress is the user's */
const USER_FACING = new Set(['pas', 'pac']);

const isOperatorAction = (event: AuditEvent) => event.detail?.actor?.startsWith('operator') === true;

/** A per-tenant pseudonym of a token id: stable within the tenant's feed, unlinkable across tenants. */
const tokenPseudonym = (tenant: string, id: string) => `tenant-sha256:${createHash('sha256').update(`keyway-audit-export\0${tenant}\0${id}`).digest('base64url').slice(0, 32)}`;

export function tenantView(event: AuditEvent, tenant: string, operatorTenant: string): AuditEvent | TenantAuditRecord {
  if (tenant === operatorTenant) return event;
  const view: TenantAuditRecord = { id: event.id, seq: event.seq, hash: event.hash, prevHash: event.prevHash };
  for (const field of KEPT) if (event[field] !== undefined) Object.assign(view, { [field]: event[field] });
  const redacted = new Set<string>();
  const operator = isOperatorAction(event);
  if (operator) {
    view.subject = 'operator';
    if (event.subject !== undefined) redacted.add('subject');
  } else {
    if (event.subject !== undefined) view.subject = event.subject;
    if (event.clientId !== undefined) view.clientId = event.clientId;
  }
  if (operator && event.clientId !== undefined) redacted.add('clientId');
  if (event.tokenId !== undefined) {
    redacted.add('tokenId');
    if (!operator) view.tokenId = tokenPseudonym(tenant, event.tokenId);
  }
  if (event.sourceAddress !== undefined) {
    if (!operator && USER_FACING.has(event.service)) view.sourceAddress = event.sourceAddress;
    else redacted.add('sourceAddress');
  }
  if (event.detail) {
    const detail: Record<string, string> = {};
    for (const [key, value] of Object.entries(event.detail)) {
      if (DETAIL.has(key)) detail[key] = value;
      else if (TOKEN_DETAIL.has(key)) {
        detail[key] = tokenPseudonym(tenant, value);
        redacted.add(`detail.${key}`);
      } else if (key === 'actor' && operator) {
        detail.actor = 'operator';
        if (value !== 'operator') redacted.add('detail.actor');
      } else redacted.add(`detail.${key}`);
    }
    if (Object.keys(detail).length > 0) view.detail = detail;
  }
  if (redacted.size > 0) view.redacted = [...redacted].sort();
  return view;
}
