import type { Request } from 'express';
import { audited, requestFields, type AuditLog } from '@keyway/audit';
import { keyIdOfSignature, parseSas } from '@keyway/sas';

/** The subscription an audited action was asked for. */
export interface SubscriptionRef {
  tenant: string;
  topic: string;
  subscription: string;
}

/**
 * The topic service's audit trail (stream `topic`): the changes a SAS key holder makes to what a
 * subscription holds (a resubmit of dead letters, a replay), recorded with the key's id as who
 * (tokenId; never the key) and the topic and subscription as detail.
 */
export function topicTrail(audit: AuditLog) {
  return {
    /**
     * Runs a change asked for with the SAS key of `req` (which the guard has checked) and records it
     * as `action` once it succeeded, with the detail `change` notes along the way (e.g. a count).
     * Refused with server_error (503 in an outage) before it is made when the trail does not take
     * writes (style rule 10); a refusal is the caller's answer and is not recorded.
     */
    sasAction<T>(req: Request, action: string, ref: SubscriptionRef, change: (note: (detail: Record<string, string>) => void) => Promise<T>): Promise<T> {
      const fields = {
        ...requestFields(req),
        tokenId: keyIdOfSignature(parseSas(req.get('authorization') ?? '').signature),
        tenant: ref.tenant,
        detail: { topic: ref.topic, subscription: ref.subscription },
      };
      return audited({ audit }, { action, fields, refusal: false, writable: true }, (scope) => change((detail) => scope.note({ detail })));
    },
  };
}
export type TopicTrail = ReturnType<typeof topicTrail>;
