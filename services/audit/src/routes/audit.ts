import { Router } from 'express';
import { queryEvents, verifyChain } from '@keyway/audit';
import { AUDIT_STREAMS, AuditPage, auditRoutes as routes, AuditVerifyReport, AuditVerifyResult } from '@keyway/contracts';
import { bindRoute, shapeResponse } from '@keyway/kit';
import type { Store } from '@keyway/store';

const HEAD = /^stream:([a-z][a-z0-9-]{0,31}):head$/;

/**
 * Every stream to verify: Keyway's own, whether or not they hold anything yet (so a stream whose head
 * was deleted is still checked), and any other stream found in the keyspace.
 */
async function streams(auditStore: Store): Promise<string[]> {
  const found = (await auditStore.keys('stream:')).flatMap((key) => HEAD.exec(key)?.[1] ?? []);
  return [...new Set([...AUDIT_STREAMS, ...found])];
}

/**
 * The audit trail for security teams (operator certificate or operator token, as at every admin
 * API; app.ts), read from the keyspace every service appends to:
 * - GET /v1/audit/events?tenant&subject&action&outcome&from&to&limit&cursor&stream&order: one page of
 *   events (newest first by default), `nextCursor` for the next; filters combine (AND).
 * - GET /v1/audit/verify?stream=pas: recomputes the stream's hash chain and answers its first broken
 *   link; without `stream`, every stream, intact only if each is.
 */
export function auditRoutes(auditStore: Store): Router {
  const router = Router();
  bindRoute(router, routes.events, async (req, res) => {
    // queryEvents checks the parameters against the AuditQuery contract (400 invalid_request otherwise)
    const page = await queryEvents(auditStore, req.query as Record<string, string>);
    res.set('Cache-Control', 'no-store').json(shapeResponse(AuditPage, page));
  });

  bindRoute(router, routes.verify, async (_req, res, input) => {
    const { stream } = input.query();
    res.set('Cache-Control', 'no-store');
    if (stream !== undefined) {
      res.json(shapeResponse(AuditVerifyResult, await verifyChain(auditStore, stream)));
      return;
    }
    const results: AuditVerifyResult[] = [];
    for (const name of await streams(auditStore)) results.push(await verifyChain(auditStore, name));
    res.json(shapeResponse(AuditVerifyReport, { ok: results.every((r) => r.ok), streams: results }));
  });
  return router;
}
