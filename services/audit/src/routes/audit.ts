import type { KeyObject } from 'node:crypto';
import { Router } from 'express';
import { queryEvents, retentionMs, verifyAll, verifyChain, type AuditDb } from '@keyway/audit';
import { AUDIT_STREAMS, AuditPage, auditRoutes as routes, AuditVerifyReport, AuditVerifyResult } from '@keyway/contracts';
import { bindRoute, shapeResponse } from '@keyway/kit';

/**
 * The audit trail for security teams (operator certificate or operator token, as at every admin
 * API; app.ts), read from the database every service appends to:
 * - GET /v1/audit/events?tenant&subject&action&outcome&from&to&limit&cursor&stream&order: one page of
 *   events (newest first by default), `nextCursor` for the next; filters combine (AND).
 * - GET /v1/audit/verify?stream=pas: recomputes the stream's hash chain, checks it against the signed
 *   checkpoints and answers its first failure; without `stream`, every stream (Keyway's own whether or
 *   not they hold anything, so a wiped stream is still checked), intact only if each is.
 *   `keyway audit verify --database-url` does the same without trusting this service.
 */
export function auditRoutes(auditDb: AuditDb, publicKey: KeyObject): Router {
  const router = Router();
  bindRoute(router, routes.events, async (req, res) => {
    // queryEvents checks the parameters against the AuditQuery contract (400 invalid_request otherwise)
    const page = await queryEvents(auditDb, req.query as Record<string, string>);
    res.set('Cache-Control', 'no-store').json(shapeResponse(AuditPage, page));
  });

  bindRoute(router, routes.verify, async (_req, res, input) => {
    const { stream, min_retention_days } = input.query();
    const options = { publicKey, minRetentionMs: retentionMs(min_retention_days) };
    res.set('Cache-Control', 'no-store');
    if (stream !== undefined) {
      res.json(shapeResponse(AuditVerifyResult, await verifyChain(auditDb, stream, options)));
      return;
    }
    res.json(shapeResponse(AuditVerifyReport, await verifyAll(auditDb, { ...options, expected: AUDIT_STREAMS })));
  });
  return router;
}
