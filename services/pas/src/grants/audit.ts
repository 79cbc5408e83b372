import { mergeFields, refusalOf, requestFields, type AuditFields, type AuditLog, type AuditRequest, type NoiseGate } from '@keyway/audit';
import type { AuditOutcome } from '@keyway/contracts';

/** An event a refusal records besides its own (e.g. the family revoked when reuse is detected). */
export interface AlsoRecorded {
  action: string;
  outcome: AuditOutcome;
  reason: string;
}

export interface GrantAudit {
  /** fields learned along the way: subject and tenant once verified, the jti once issued */
  note(fields: AuditFields): void;
  /**
   * Names the audit action of the refusal about to be thrown (login.failed, refresh.reuse_detected, …)
   * and returns the error, so a grant writes `throw audit.refuse(err, action)`. A refusal not named
   * is `authorization.denied` for a 403 (the entitlement service's denial; its reason code is the
   * reason) and `grant.failed` otherwise.
   *
   * `noise`: the refusal is counted, not recorded (see `refused`).
   */
  refuse<E>(err: E, action: string, options?: { reason?: string; also?: AlsoRecorded[]; noise?: boolean }): E;
  /** what the trail knows of the request so far (the tenant for the metrics) */
  readonly fields: AuditFields;
}

/**
 * The trail of one token request. The token endpoint records the outcome (success or refusal)
 * once the grant returns or throws; grants only note what they learn and name their refusals.
 */
export function grantAudit(log: AuditLog, req: AuditRequest, grantType: string, noise: { gate: NoiseGate; source: string }) {
  let fields: AuditFields = { ...requestFields(req), detail: { grant_type: grantType } };
  let named: { action: string; reason?: string | undefined; also: AlsoRecorded[]; noise: boolean } | undefined;

  const audit: GrantAudit = {
    note(more) {
      fields = mergeFields(fields, more);
    },
    refuse(err, action, options = {}) {
      named = { action, reason: options.reason, also: options.also ?? [], noise: options.noise ?? false };
      return err;
    },
    get fields() {
      return fields;
    },
  };

  return {
    audit,
    /**
     * The success record is part of the grant (style rule 10): when it cannot be written this throws
     * ServerError and the token endpoint never answers the pair it was about to return.
     */
    async succeeded(action: string): Promise<void> {
      await log.record({ ...fields, action, outcome: 'success' });
    },
    /**
     * Records a refusal (and what came with it); a denial stays a denial even when the trail cannot
     * take it (record() logs and counts that failure), so nothing here throws. Answers the outcome.
     *
     * Issue 9: a refusal that concerns no authenticated party (a token that does not verify, a
     * malformed or throttled request: a 4xx other than 403 before any subject is known, or one named
     * as noise) is noise an outsider can send at will. It is counted per source and minute and written
     * as one aggregated event (refusals.aggregated), never one event per request. Failed logins,
     * authenticated denials, reuse and revocations stay individual events.
     */
    async refused(err: unknown): Promise<{ action: string; outcome: AuditOutcome; reason: string; noise: boolean }> {
      const refusal = refusalOf(err);
      const action = named?.action ?? (refusal.status === 403 ? 'authorization.denied' : 'grant.failed');
      const reason = named?.reason ?? (refusal.status === 403 ? (refusal.detail.error_detail ?? refusal.reason) : refusal.reason);
      const unauthenticated = named === undefined && fields.subject === undefined && refusal.outcome === 'denied' && refusal.status !== 403;
      // a named noise refusal may be a 503 (the IdP's verification queue is full under a flood): counted all the same
      if (named?.noise || unauthenticated) {
        await noise.gate.refused(noise.source, refusal.reason);
        return { action, outcome: refusal.outcome, reason, noise: true };
      }
      const detail = { ...fields.detail, ...refusal.detail };
      const event = { ...fields, action, outcome: refusal.outcome, reason, detail };
      // a failed login names no one authenticated: recorded within the stream's noise budget (packages/audit recordBounded)
      if (fields.subject === undefined && refusal.outcome === 'denied') await log.recordBounded(event);
      else await log.record(event).catch(() => undefined);
      for (const also of named?.also ?? []) await log.record({ ...fields, ...also }).catch(() => undefined);
      return { action, outcome: refusal.outcome, reason, noise: false };
    },
  };
}
