import { auditRoutes, AuditVerifyReport, AuditVerifyResult, type AuditQuery } from '@keyway/contracts';
import { createHttp, type ClientOptions } from './http.ts';
import { routeCaller, type CallOptions } from './route.ts';

/**
 * The audit service: the trail of every service for security teams. Calls authenticate with the
 * operator certificate (`clientCert`), an operator access token (`accessToken`), or a token of the
 * call's own (the console forwarding its operator's).
 */
export function auditClient(options: ClientOptions) {
  const { call } = routeCaller(createHttp(options), 'audit');
  return {
    /** one page of the audit trail of every service, newest first unless `order: 'oldest'`; pass `nextCursor` back as `cursor` until it is null */
    events: (query: AuditQuery = {}, callOptions?: Pick<CallOptions, 'accessToken'>) => call(auditRoutes.events, { query }, callOptions),
    /** recomputes one stream's hash chain: intact, or its first broken link; `minRetentionDays` also checks no signed trim came sooner */
    verify: async (stream: string, minRetentionDays?: number) => AuditVerifyResult.parse(await call(auditRoutes.verify, { query: { stream, min_retention_days: minRetentionDays } })),
    /** every stream's chain; `ok` only if each is intact */
    verifyAll: async (minRetentionDays?: number) => AuditVerifyReport.parse(await call(auditRoutes.verify, { query: { min_retention_days: minRetentionDays } })),
  };
}
export type AuditClient = ReturnType<typeof auditClient>;
