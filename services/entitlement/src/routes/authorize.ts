import { Router } from 'express';
import { AuthorizeDecision, AuthorizeRequest } from '@keyway/contracts';
import { parseInput, requireContentType, requireService, shapeResponse } from '@keyway/kit';
import { evaluate } from '../policy/evaluate.ts';
import type { PolicyRepository } from '../policy/repository.ts';

/** POST /v1/authorize (PAS and PAC only): may this user of this tenant use these feeds with this role? */
export function authorizeRoutes(policy: PolicyRepository, operatorTenant: string): Router {
  const router = Router();
  router.post('/v1/authorize', requireService('pas', 'pac'), requireContentType('application/json'), async (req, res) => {
    const request = parseInput(AuthorizeRequest, req.body, 'body');
    const [tenant, user] = await Promise.all([policy.findTenant(request.tenant), policy.findUser(request.sub)]);
    const decision = evaluate({ tenant, user, role: request.role, feeds: request.feeds, operatorTenant });
    if (!decision.allow) req.log.info('authorization denied', { tenant: request.tenant, sub: request.sub, reason: decision.reason });
    res.json(shapeResponse(AuthorizeDecision, decision));
  });
  return router;
}
