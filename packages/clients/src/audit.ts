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
    /** recomputes one stream's hash chain: intact, or its first broken link */
    verify: async (stream: string) => AuditVerifyResult.parse(await call(auditRoutes.verify, { query: { stream } })),
    /** every stream's chain; `ok` only if each is intact */
    verifyAll: async () => AuditVerifyReport.parse(await call(auditRoutes.verify)),
  };
}
export type AuditClient = ReturnType<typeof auditClient>;
