import { Router } from 'express';
import { attributes, requestFields, type AuditLog, type SecurityMetrics } from '@keyway/audit';
import { AuthorizeDecision, entitlementRoutes } from '@keyway/contracts';
import { bindRoute, callerService, requireBodyType, requireInternal, shapeResponse } from '@keyway/kit';
import { evaluate } from '../policy/evaluate.ts';
import type { PolicyRepository } from '../policy/repository.ts';

/**
 * POST /v1/authorize (PAS only): which rights do this user's roles grant on these feeds of the tenant
 * (or may the user use the operator admin APIs)?
 * A denial is recorded as authorization.denied with its reason code and the asking service as client;
 * the answer stays a denial whether or not the trail takes it. An allow is recorded by the caller,
 * as the token or key it issues.
 */
export function authorizeRoutes(policy: PolicyRepository, operatorTenant: string, trail: { audit: AuditLog; metrics: SecurityMetrics }): Router {
  const router = Router();
  bindRoute(router, entitlementRoutes.authorize, requireInternal('entitlement', 'POST /v1/authorize'), requireBodyType(entitlementRoutes.authorize), async (req, res, input) => {
    const request = input.body();
    const [tenant, user] = await Promise.all([policy.findTenant(request.tenant), policy.findUser(request.sub)]);
    const decision = evaluate({ tenant, user, access: request.access, feeds: request.feeds, operatorTenant });
    if (!decision.allow) {
      req.log.info('authorization denied', { tenant: request.tenant, sub: request.sub, reason: decision.reason });
      trail.metrics.denials.add(1, attributes({ service: 'entitlement', action: 'authorization.denied', tenant: request.tenant, reason: decision.reason }));
      await trail.audit
        .record({
          ...requestFields(req),
          action: 'authorization.denied',
          outcome: 'denied',
          tenant: request.tenant,
          subject: request.sub.slice(0, 256),
          clientId: callerService(req),
          reason: decision.reason,
          detail: { access: request.access, feeds: request.feeds.join(',').slice(0, 512) },
        })
        .catch(() => undefined);
    }
    res.json(shapeResponse(AuthorizeDecision, decision));
  });
  return router;
}
