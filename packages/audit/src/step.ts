import type { AuditOutcome } from '@keyway/contracts';
import type { AuditLog } from './audited.ts';
import type { AuditInput } from './event.ts';
import type { NoiseGate } from './noise-gate.ts';
import { mergeFields, refusalOf, requireWritableTrail, type Refusal } from './request.ts';
import { attributes, type SecurityMetrics } from './security-metrics.ts';

/** The fields an action can fill in as it learns them (the subject once verified, the jti once issued). */
export type AuditFields = Omit<AuditInput, 'action' | 'outcome'>;

/** Where a step records and counts: the service's audit log and, where it has them, its security metrics. */
export interface Trail {
  audit: AuditLog;
  /** keyway.denials counts every denial the steps see; unset: nothing is counted */
  metrics?: SecurityMetrics | undefined;
}

/** An event the step records after its own, with its fields (e.g. the family revoked along with a token, or when reuse is detected). */
interface AlsoRecorded {
  action: string;
  outcome: AuditOutcome;
  reason: string;
}

interface RefuseOptions {
  /** the recorded reason (default: the error's OAuth code) */
  reason?: string | undefined;
  /** counted by the step's noise gate, never recorded: refusals an outsider causes at will (issue 9) */
  noise?: boolean | undefined;
}

/** What the action sees of its step. */
export interface AuditScope {
  /** fields learned along the way: subject and tenant once verified, the jti once issued */
  note(fields: AuditFields): void;
  /**
   * Names the audit action of the refusal about to be thrown (login.failed, refresh.reuse_detected, …)
   * and returns the error, so an action writes `throw scope.refuse(err, action)`.
   */
  refuse<E>(err: E, action: string, options?: RefuseOptions): E;
  /**
   * The action answers, but what it answers is a refusal (a policy decision to deny, a superseded
   * delivery): recorded and counted as denied instead of a success.
   */
  deny(action: string, reason: string, fields?: AuditFields): void;
  /** records this event after the step's own, whatever the outcome (and as part of a success: fail closed) */
  also(event: AlsoRecorded): void;
  /** what the trail knows of the request so far */
  readonly fields: AuditFields;
}

export interface AuditedAction {
  /** recorded on success; unset: the success is recorded by whoever acts on it (an allow, as the token it leads to) */
  action?: string | undefined;
  /** what the trail knows before the action runs (requestFields(req), the actor) */
  fields?: AuditFields | undefined;
  /**
   * How a refusal the action did not name is recorded: its action and reason (default: the success
   * action's "<noun>.denied" or "<noun>.failed" and the OAuth code; nothing without a success action);
   * `false`: it is not recorded (a refused change changed nothing, and the caller's answer says why).
   */
  refusal?: false | ((refusal: Refusal) => { action: string; reason?: string | undefined }) | undefined;
  /** refuse with server_error before acting when the trail does not take writes (a change that cannot be taken back) */
  writable?: boolean | undefined;
  /** counts the outcome in the action's own metric (keyway.tokens.issued, keyway.sas_keys.minted, …) */
  count?: ((outcome: AuditOutcome, fields: AuditFields) => void) | undefined;
  /**
   * Issue 9: refusals that name nobody (no subject noted, not named by the action) and refusals named
   * as noise are counted per source by this gate (one refusals.aggregated event per source and
   * window), never recorded one by one. Without a gate, a refusal naming nobody is recorded within the
   * stream's noise budget (recordBounded).
   */
  noise?: { gate: NoiseGate; source: string } | undefined;
  /** a refusal naming nobody is a caller that is authenticated otherwise (a signed CRM delivery): recorded like any other */
  authenticated?: boolean | undefined;
}

/**
 * Runs an action as an audited one, the one way a service records what it does: the action `note`s
 * fields as it learns them; its success is recorded (and counted) before the result is returned, so a
 * success the trail cannot take fails with server_error (style rule 10) and its result never leaves;
 * a thrown error is recorded (and counted) as a denial (4xx) or a failure (5xx, anything not an
 * OAuthError: refusalOf) and rethrown. A refusal stays a refusal even when the trail cannot take it
 * (record() logs and counts that).
 */
export async function audited<T>(trail: Trail, spec: AuditedAction, fn: (scope: AuditScope) => Promise<T>): Promise<T> {
  const { audit, metrics } = trail;
  let fields: AuditFields = spec.fields ?? {};
  let named: ({ action: string } & RefuseOptions) | undefined;
  let denied: { action: string; reason: string } | undefined;
  const also: AlsoRecorded[] = [];

  const countRefusal = (outcome: AuditOutcome, action: string, reason: string): void => {
    spec.count?.(outcome, fields);
    if (outcome === 'denied') metrics?.denials.add(1, attributes({ service: audit.service, action, tenant: fields.tenant, reason }));
  };

  const scope: AuditScope = {
    note(more) {
      fields = mergeFields(fields, more);
    },
    refuse(err, action, options = {}) {
      named = { action, ...options };
      return err;
    },
    deny(action, reason, more = {}) {
      fields = mergeFields(fields, more);
      denied = { action, reason };
    },
    also(event) {
      also.push(event);
    },
    get fields() {
      return fields;
    },
  };

  let result: T;
  try {
    if (spec.writable) await requireWritableTrail(audit);
    result = await fn(scope);
  } catch (err) {
    await refused(err);
    throw err;
  }
  if (denied) {
    countRefusal('denied', denied.action, denied.reason);
    await audit.record({ ...fields, action: denied.action, outcome: 'denied', reason: denied.reason }).catch(() => undefined);
    for (const event of also) await audit.record({ ...fields, ...event }).catch(() => undefined);
    return result;
  }
  if (spec.action === undefined) return result;
  try {
    await audit.record({ ...fields, action: spec.action, outcome: 'success' });
    for (const event of also) await audit.record({ ...fields, ...event });
  } catch (err) {
    spec.count?.('failure', fields);
    throw err;
  }
  spec.count?.('success', fields);
  return result;

  async function refused(err: unknown): Promise<void> {
    const refusal = refusalOf(err);
    const recorded = named ?? refusalAction(spec, refusal);
    if (recorded === undefined) {
      spec.count?.(refusal.outcome, fields);
      return;
    }
    const reason = recorded.reason ?? refusal.reason;
    countRefusal(refusal.outcome, recorded.action, reason);
    const nobody = fields.subject === undefined && refusal.outcome === 'denied' && !spec.authenticated;
    if (spec.noise && (named?.noise || (named === undefined && nobody))) {
      await spec.noise.gate.refused(spec.noise.source, refusal.reason);
      return;
    }
    const event = { ...mergeFields(fields, { detail: refusal.detail }), action: recorded.action, outcome: refusal.outcome, reason };
    if (nobody) await audit.recordBounded(event);
    else await audit.record(event).catch(() => undefined);
    for (const event of also) await audit.record({ ...fields, ...event }).catch(() => undefined);
  }
}

/** The action and reason of a refusal the action did not name; undefined when it is not recorded. */
function refusalAction(spec: AuditedAction, refusal: Refusal): { action: string; reason?: string | undefined } | undefined {
  if (spec.refusal === false) return undefined;
  if (spec.refusal) return spec.refusal(refusal);
  if (spec.action === undefined) return undefined;
  const noun = spec.action.split('.')[0];
  return { action: refusal.outcome === 'denied' ? `${noun}.denied` : `${noun}.failed` };
}
