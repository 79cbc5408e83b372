import { AuditPage, AuditVerifyReport, AuditVerifyResult, type AuditQuery } from '@keyway/contracts';
import { call, callConfig, createHttp, type CallOptions, type ClientOptions } from './http.ts';

/**
 * The audit service: the trail of every service for security teams. Calls authenticate with the
 * operator certificate (`clientCert`), an operator access token (`accessToken`), or a token of the
 * call's own (the console forwarding its operator's).
 */
export function auditClient(options: ClientOptions) {
  const http = createHttp(options);
  return {
    /** one page of the audit trail of every service, newest first unless `order: 'oldest'`; pass `nextCursor` back as `cursor` until it is null */
    events: (query: AuditQuery = {}, perCall?: CallOptions) => call(() => http.get('/v1/audit/events', { params: query, ...callConfig(perCall) }), AuditPage, 'audit'),
    /** recomputes one stream's hash chain: intact, or its first broken link */
    verify: (stream: string) => call(() => http.get('/v1/audit/verify', { params: { stream } }), AuditVerifyResult, 'audit'),
    /** every stream's chain; `ok` only if each is intact */
    verifyAll: () => call(() => http.get('/v1/audit/verify'), AuditVerifyReport, 'audit'),
  };
}
export type AuditClient = ReturnType<typeof auditClient>;
