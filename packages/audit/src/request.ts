import { OAuthError, outageAnswer, ServerError, type OperatorIdentity, type ReadinessCheck } from '@keyway/kit';
import type { AuditLog } from './audited.ts';
import type { AuditFields } from './step.ts';
import { looksSecret, type AuditOutcome } from './event.ts';

/** What an HTTP request tells the trail; structural, so this package needs no web framework. */
export interface AuditRequest {
  /** the request id (createBaseApp): it travels in x-request-id and ties the events of one request together */
  id: string;
  ip?: string | undefined;
  socket: { remoteAddress?: string | undefined };
  /** set by requireOperator on the admin APIs */
  operator?: OperatorIdentity | undefined;
}

/**
 * The fields every event of a request carries: request id and source address (Express's req.ip, which
 * is the socket's address since services do not trust proxy headers), and, on the admin APIs, the
 * operator as the actor: the bearer token's subject and jti, or the operator certificate as client.
 */
export function requestFields(req: AuditRequest): AuditFields {
  const fields: AuditFields = { requestId: req.id, sourceAddress: req.ip ?? req.socket.remoteAddress };
  const operator = req.operator;
  if (operator?.via === 'bearer') return { ...fields, subject: operator.sub, tokenId: operator.jti, detail: { actor: 'operator_token', actor_tenant: operator.tenant } };
  if (operator?.via === 'certificate') return { ...fields, clientId: operator.service, detail: { actor: 'operator_certificate' } };
  return fields;
}

/**
 * kit RecentAuthentication.onRefused for a service's trail: an operator token refused by step-up
 * (RFC 9470) is step_up.refused, with the reason (acr: no second factor; max_age: too old a login).
 */
export const stepUpRefusals =
  (audit: AuditLog) =>
  async (req: AuditRequest, refusal: { sub: string; tenant: string; jti: string; reason: string }): Promise<void> => {
    await audit.record({ ...requestFields(req), tenant: refusal.tenant, action: 'step_up.refused', outcome: 'denied', reason: refusal.reason });
  };

/** How a refused or failed action is described in the trail. */
export interface Refusal {
  /**
   * `denied` when the caller was refused (any 4xx: bad credentials, policy, a spent or revoked token),
   * `failure` when the service could not complete the action (5xx): one rule for every service, so
   * "all denials" is one query and one counter.
   */
  outcome: Exclude<AuditOutcome, 'success'>;
  /** the OAuth error code (invalid_grant, access_denied, ...), or server_error for anything else */
  reason: string;
  /** the HTTP status the caller gets */
  status: number;
  /** the error's detail (style rule 3: for logs and audit only), redacted when it holds a credential */
  detail: Record<string, string>;
}

export function refusalOf(err: unknown): Refusal {
  if (!(err instanceof OAuthError)) return { outcome: 'failure', reason: 'server_error', status: 500, detail: {} };
  const detail: Record<string, string> = err.detail ? { error_detail: looksSecret(err.detail) ? '[redacted]' : err.detail.slice(0, 512) } : {};
  return { outcome: err.status < 500 ? 'denied' : 'failure', reason: err.code, status: err.status, detail };
}

/** Merges audit fields, detail entries included (later wins). */
export function mergeFields(base: AuditFields, more: AuditFields): AuditFields {
  const detail = base.detail || more.detail ? { ...base.detail, ...more.detail } : undefined;
  return { ...base, ...more, detail };
}

/**
 * Style rule 10 for a change that cannot be taken back (an admin change, a key rotation): refuse it
 * with server_error before it is made when the trail does not take writes, rather than make it and
 * then fail to record it. What remains is the trail failing between this check and the record, in
 * which case the change stands and the caller gets server_error.
 */
export async function requireWritableTrail(log: AuditLog): Promise<void> {
  try {
    await log.ready();
  } catch (err) {
    throw outageAnswer(err) ?? new ServerError(undefined, `audit trail not writable: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * /readyz of a service that records to the trail (style rule 10): ready only while its own store
 * answers and the trail takes writes the way an append does, since it acts on nothing unrecorded.
 */
export function readinessWithTrail(store: { ping(): Promise<void> }, log: Pick<AuditLog, 'ready'>): ReadinessCheck[] {
  return [
    { name: 'store', check: () => store.ping() },
    { name: 'audit', check: () => log.ready() },
  ];
}
