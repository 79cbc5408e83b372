import { Router } from 'express';
import { audited, requestFields, type Trail } from '@keyway/audit';
import { AuthorizeDecision, entitlementRoutes } from '@keyway/contracts';
import { AccessDenied, bindRoute, callerService, requireBodyType, shapeResponse } from '@keyway/kit';
import { evaluate } from '../policy/evaluate.ts';
import type { PolicyRepository } from '../policy/repository.ts';

/** The releases service asks about releases only (least privilege): nothing of feeds or operators. */
const RELEASES_CALLER = 'releases';

/**
 * POST /v1/authorize (PAS, PAC; the releases service for access releases only): which rights do this
 * user's roles grant on these feeds of the tenant (or on releases, or may the user use the operator
 * admin APIs)?
 * A denial is recorded as authorization.denied with its reason code and the asking service as client;
 * the answer stays a denial whether or not the trail takes it. An allow is recorded by the caller,
 * as the token or key it issues.
 */
export function authorizeRoutes(policy: PolicyRepository, operatorTenant: string, trail: Trail): Router {
  const router = Router();
  bindRoute(router, entitlementRoutes.authorize, requireBodyType(entitlementRoutes.authorize), async (req, res, input) => {
    const request = input.body();
    if (callerService(req) === RELEASES_CALLER && request.access !== 'releases') {
      throw new AccessDenied('this service may ask about releases only', `caller ${RELEASES_CALLER} asked for access ${request.access}`);
    }
    const fields = {
      ...requestFields(req),
      tenant: request.tenant,
      subject: request.sub.slice(0, 256),
      clientId: callerService(req),
      detail: { access: request.access, feeds: request.feeds.join(',').slice(0, 512) },
    };
    // no success action: an allow is recorded by PAS, and a lookup that fails is PAS's grant.failed
    const decision = await audited(trail, { fields, refusal: false }, async (scope) => {
      const [tenant, user] = await Promise.all([policy.findTenant(request.tenant), policy.findUser(request.sub)]);
      // a tenant's products are read from its tier at each answer, so a tier change holds at once
      const tier = request.access === 'releases' && tenant?.tier !== undefined ? await policy.findTier(tenant.tier) : undefined;
      const decided = evaluate({ tenant, user, access: request.access, feeds: request.feeds, operatorTenant, tierProducts: tier?.products });
      if (!decided.allow) {
        req.log.info('authorization denied', { tenant: request.tenant, sub: request.sub, reason: decided.reason });
        scope.deny('authorization.denied', decided.reason);
      }
      return decided;
    });
    res.json(shapeResponse(AuthorizeDecision, decision));
  });
  return router;
}
