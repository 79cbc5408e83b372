import express, { Router, type RequestHandler } from 'express';
import { audited, mergeFields, requestFields, type AuditedAction, type AuditFields, type AuditLog } from '@keyway/audit';
import { CRM_HEADERS, CrmDeliveryResult, DeliveryId, entitlementRoutes } from '@keyway/contracts';
import { bindRoute, Conflict, InvalidClient, InvalidRequest, NotFound, parseInput, requireBodyType, shapeResponse } from '@keyway/kit';
import type { Admin } from '../admin/operations.ts';
import { applyContract } from '../crm/contract.ts';
import { bodyDigest, type CrmDeliveries } from '../crm/deliveries.ts';
import { checkCrmSignature } from '../crm/signature.ts';
import type { PolicyRepository } from '../policy/repository.ts';

/** The global JSON parser skips this path (createBaseApp rawBodyPaths): the signature covers the exact bytes. */
export const CRM_WEBHOOK_PATH = entitlementRoutes.crmWebhook.path;

export interface CrmWebhookDeps {
  /** unset: CRM sync is not configured and the endpoint answers 404 */
  secret?: string;
  deliveries: CrmDeliveries;
  policy: PolicyRepository;
  admin: Admin;
  operatorTenant: string;
  nowSec: () => number;
  audit: AuditLog;
}

/** The CRM as the actor of the changes a delivery makes. */
const CRM_CLIENT = 'crm';

/** A delivery's one step in the trail: crm.sync, whatever its outcome. */
const crmSync = (fields: AuditFields, more: Partial<AuditedAction> = {}): AuditedAction => ({ fields, refusal: () => ({ action: 'crm.sync' }), ...more });

/**
 * POST /v1/crm/webhook: the CRM pushes a customer's contract (crm/contract.ts maps it). Not an
 * operator call: the sender proves itself with an HMAC-SHA256 signature over everything acted on:
 * the timestamp, the delivery id and the raw body (crm/signature.ts); each delivery id is applied
 * once, and a customer's deliveries in the order of their signed timestamps (crm/deliveries.ts):
 * - 200 `{ id, duplicate: false, tenant }` applied; 200 `{ id, duplicate: true }` the same delivery
 *   again (nothing applied, so a retrying sender stops); 200 `{ id, duplicate: false, superseded: true }`
 *   a delivery signed before the customer's newest applied one (nothing applied, recorded as denied);
 * - 401 invalid_client for a bad signature or a timestamp more than 5 minutes off;
 * - 409 conflict for another body under a delivery id already seen (or one still being applied, or
 *   another delivery for the same customer being applied),
 *   and for a customer that maps onto a tenant the CRM does not manage;
 * - 400 for a body that is not a contract; 404 when no CRM_WEBHOOK_SECRET is configured.
 *
 * The trail: each change a delivery makes is an admin.<noun>_<verb> event with the CRM as client, then
 * crm.sync for the delivery (success, or why it failed: a bad signature, a contract that cannot be
 * applied). A duplicate changes nothing and records nothing.
 */
export function crmWebhookRoutes(deps: CrmWebhookDeps): Router {
  const router = Router();

  const configured: RequestHandler = (_req, _res, next) => next(deps.secret ? undefined : new NotFound('CRM sync is not configured'));
  const readRaw = express.raw({ type: () => true, limit: '256kb' });
  const verifySignature: RequestHandler = (req, _res, next) => {
    // Only this route reads the body, as a Buffer; anything else means the raw bytes are gone.
    if (!Buffer.isBuffer(req.body)) return next(new InvalidRequest('the body could not be read as sent'));
    const refused = checkCrmSignature({
      secret: deps.secret!,
      timestamp: req.get(CRM_HEADERS.timestamp),
      delivery: req.get(CRM_HEADERS.delivery),
      signature: req.get(CRM_HEADERS.signature),
      rawBody: req.body,
      nowSec: deps.nowSec(),
    });
    // Forged or replayed deliveries are worth knowing about, but they name no one: recorded within the
    // stream's noise budget (issue 9), and the refusal stands whether or not the trail takes it.
    audited({ audit: deps.audit }, crmSync(mergeFields(requestFields(req), { clientId: CRM_CLIENT })), async () => {
      if (refused) throw new InvalidClient('the webhook signature or timestamp is not valid', refused);
    }).then(() => next(), next);
  };

  bindRoute(router, entitlementRoutes.crmWebhook, configured, requireBodyType(entitlementRoutes.crmWebhook), readRaw, verifySignature, async (req, res) => {
    const raw = req.body as Buffer;
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new InvalidRequest('the body is not valid JSON');
    }
    const delivery = parseInput(entitlementRoutes.crmWebhook.body.schema, json, 'body');
    const header = req.get(CRM_HEADERS.delivery);
    if (header !== undefined && delivery.id !== undefined && header !== delivery.id) throw new InvalidRequest(`${CRM_HEADERS.delivery} and body.id name different deliveries`);
    const id = parseInput(DeliveryId, header ?? delivery.id, 'delivery id');
    req.log = req.log.child({ actor: { via: 'crm', delivery: id } });

    const digest = bodyDigest(raw);
    const claim = await deps.deliveries.claim(id, digest);
    if (claim === 'duplicate') {
      req.log.info('crm.delivery_duplicate', { delivery: id });
      res.json(shapeResponse(CrmDeliveryResult, { id, duplicate: true }));
      return;
    }
    if (claim === 'conflict') throw new Conflict(`delivery ${id} was received before with another body`);
    if (claim === 'in_progress') throw new Conflict(`delivery ${id} is being applied; retry`, undefined, { 'retry-after': '5' });

    const crm = { clientId: CRM_CLIENT, detail: { delivery: id, customer: delivery.customer.id.slice(0, 512) } };
    const actor = mergeFields(requestFields(req), crm);
    // Verified and signed: the order of a customer's deliveries is their signed timestamps.
    const signedAt = Number(req.get(CRM_HEADERS.timestamp));
    const customerId = delivery.customer.id;
    if (!(await deps.deliveries.lockCustomer(customerId))) {
      await deps.deliveries.release(id);
      throw new Conflict(`another delivery for customer ${customerId} is being applied; retry`, undefined, { 'retry-after': '5' });
    }
    try {
      // the CRM is authenticated by its signature: a refusal from here on is an event of its own
      const tenant = await audited({ audit: deps.audit }, crmSync(actor, { action: 'crm.sync', writable: true, authenticated: true }), async (scope) => {
        if (await deps.deliveries.supersededFor(customerId, signedAt)) {
          // An older state arriving after a newer one (reordered, or a captured delivery replayed): applied never.
          scope.deny('crm.sync', 'superseded', { detail: { signed_at: String(signedAt) } });
          return undefined;
        }
        const applied = await applyContract(deps.admin(req, crm), deps.policy, delivery, deps.operatorTenant);
        await deps.deliveries.applied(customerId, signedAt);
        scope.note({ tenant: applied.id, detail: { status: applied.status, feeds: applied.feeds.join(',').slice(0, 512) } });
        return applied;
      });
      await deps.deliveries.complete(id, digest);
      if (!tenant) {
        req.log.warn('crm.delivery_superseded', { delivery: id, signedAt });
        res.json(shapeResponse(CrmDeliveryResult, { id, duplicate: false, superseded: true }));
        return;
      }
      req.log.info('crm.delivery_applied', { delivery: id, tenant: tenant.id, status: tenant.status, feeds: tenant.feeds });
      res.json(shapeResponse(CrmDeliveryResult, { id, duplicate: false, tenant: tenant.id }));
    } catch (err) {
      await deps.deliveries.release(id);
      throw err;
    } finally {
      await deps.deliveries.unlockCustomer(customerId);
    }
  });
  return router;
}
