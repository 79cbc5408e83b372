import { z } from 'zod';
import { AuditPage, AuditQuery, AuditVerifyQuery, AuditVerifyReport, AuditVerifyResult } from '../audit.ts';
import { jsonResponse, openApiDocument, operatorOnly } from '../openapi.ts';
import { pathsOf, route } from '../route.ts';

/** The audit service's operations, declared once (server binding, client, OpenAPI and the endpoint fuzz). */
export const auditRoutes = {
  events: operatorOnly(route({ method: 'get', path: '/v1/audit/events', summary: 'audit events of every service by tenant, subject, action, outcome, stream and time range (from inclusive, to exclusive), a page at a time', description: 'Newest first unless order=oldest; pass nextCursor back as cursor until it is null. A page may hold fewer than limit events while nextCursor is set.', query: AuditQuery, responses: { 200: jsonResponse(AuditPage, 'one page of events') }, errors: [400] })),
  verify: operatorOnly(route({ method: 'get', path: '/v1/audit/verify', summary: 'recompute the hash chain of a stream (or of every stream) and answer the first broken link', description: 'With stream: that stream\'s AuditVerifyResult. Without: { ok, streams }, ok only if every stream is intact.', query: AuditVerifyQuery, responses: { 200: jsonResponse(z.union([AuditVerifyResult, AuditVerifyReport]), 'the stream\'s result, or every stream\'s') }, errors: [400] })),
};

export const auditPaths = pathsOf(auditRoutes);

export const auditApi = openApiDocument({ title: 'Keyway audit service', description: 'The audit trail every service appends to, for security teams: query and chain verification (the operator client certificate or an operator access token, PAS scope=operator). It also exports each entitled tenant\'s events to the tenant\'s `audit` topic through the topic service.' }, auditPaths);
