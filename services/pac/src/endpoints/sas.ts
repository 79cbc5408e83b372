import { Router } from 'express';
import { requestFields, type AuditFields } from '@keyway/audit';
import { pacRoutes, SasRequest, SasResponse } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse, type DpopGuard } from '@keyway/kit';
import { mintSasKey, type SasMintDeps, type SasMintOptions } from '../sas/mint.ts';

export type SasEndpointOptions = SasMintOptions;

/**
 * POST /v1/sas: the HTTP face of mintSasKey (sas/mint.ts), which audits, counts and refuses. `dpop`:
 * the proof checks (PAC's nonce required, 400 invalid_dpop_proof / use_dpop_nonce); every answer
 * carries a fresh DPoP-Nonce so an agent's next proof has one.
 */
export function sasEndpoint(options: SasEndpointOptions, deps: SasMintDeps, dpop: () => Promise<DpopGuard>): Router {
  const router = Router();
  bindRoute(router, pacRoutes.sas, requireBodyType(pacRoutes.sas), async (req, res, input) => {
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    // the rights asked for, when valid, even if the rest of the body is not: a refusal's metric names them
    const rights = (req.body as { rights?: unknown } | undefined)?.rights;
    const fields: AuditFields = { ...requestFields(req), detail: typeof rights === 'string' && SasRequest.shape.rights.safeParse(rights).success ? { rights } : {} };
    const proofs = await dpop();
    proofs.offerNonce(res);
    const origin = {
      fields,
      source: req.ip ?? req.socket.remoteAddress ?? 'unknown',
      log: req.log,
      proveKey: (expected: { credential: string; jkt: string | undefined }) => proofs.check(req, expected),
    };
    const answer = await mintSasKey(options, deps, origin, input.body);
    res.json(shapeResponse(SasResponse, answer));
  });
  return router;
}
