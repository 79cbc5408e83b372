import { Router } from 'express';
import { requestFields, type AuditFields } from '@keyway/audit';
import { pacRoutes, SasRequest, SasResponse } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import { mintSasKey, type SasMintDeps, type SasMintOptions } from '../sas/mint.ts';

export type SasEndpointOptions = SasMintOptions;

/** POST /v1/sas: the HTTP face of mintSasKey (sas/mint.ts), which audits, counts and refuses. */
export function sasEndpoint(options: SasEndpointOptions, deps: SasMintDeps): Router {
  const router = Router();
  bindRoute(router, pacRoutes.sas, requireBodyType(pacRoutes.sas), async (req, res, input) => {
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    // the rights asked for, when valid, even if the rest of the body is not: a refusal's metric names them
    const rights = (req.body as { rights?: unknown } | undefined)?.rights;
    const fields: AuditFields = { ...requestFields(req), detail: typeof rights === 'string' && SasRequest.shape.rights.safeParse(rights).success ? { rights } : {} };
    const origin = { fields, source: req.ip ?? req.socket.remoteAddress ?? 'unknown', log: req.log };
    const answer = await mintSasKey(options, deps, origin, input.body);
    res.json(shapeResponse(SasResponse, answer));
  });
  return router;
}
