import type { Request } from 'express';
import { audited, requestFields, type AuditLog, type AuditScope } from '@keyway/audit';
import { OPERATOR_PROOF_HEADER } from '@keyway/contracts';
import { AccessDenied, callerService, grantsOperator, type BearerVerifier } from '@keyway/kit';
import { accessTokenChecker, type JWTVerifyGetKey } from '@keyway/tokens';

export interface InternalChangeOptions {
  /** the IdP's audit stream ("idp"): every credential change made through the internal API */
  audit: AuditLog;
  /** the vendor's tenant, whose users are the operators */
  operatorTenant: string;
  /**
   * Verifies the operator access token forwarded in X-Keyway-Operator-Token (PAS's keys, iss, the
   * entitlement service as aud). Unset: no credential of an operator account can be replaced.
   */
  operatorProof?: BearerVerifier | undefined;
}

/**
 * The second line of defence behind the entitlement service's certificate (issue 9): that certificate
 * alone may manage customers' credentials, but adding or replacing a way into an operator account (a
 * password, an email, a client key on credentials that exist) needs proof that an operator asked for
 * it: that operator's own access token for the operator scope, verified here against PAS's keys. First
 * registration of an operator account (no credentials yet) and removals (which only take access away)
 * need none. Every change, and every refusal, is recorded in the IdP's trail with the calling
 * certificate's name as client.
 */
export function internalChanges(options: InternalChangeOptions) {
  return {
    /**
     * One credential change as an audited step: refused with server_error before it is made when the
     * trail does not take writes (fails closed); `run` makes it and notes what the trail records
     * (tenant, subject, detail); it is recorded as `action` with the calling certificate as client.
     * Refusals other than a missing operator proof change nothing and are not recorded.
     */
    change<T>(req: Request, action: string, run: (step: AuditScope) => Promise<T>): Promise<T> {
      const caller = callerService(req) ?? 'unknown';
      const fields = { ...requestFields(req), clientId: caller, detail: { caller_cert: caller } };
      return audited({ audit: options.audit }, { action, fields, writable: true, refusal: false }, run);
    },

    /**
     * For changes that add or replace a way into an account: when it is (or becomes) an operator
     * account, answers the proving operator's sub, or refuses (403, recorded as the change's action).
     * Otherwise undefined.
     */
    async proofFor(req: Request, step: AuditScope, action: string, sub: string, tenants: Array<string | undefined>): Promise<string | undefined> {
      if (!tenants.includes(options.operatorTenant)) return undefined;
      const token = req.get(OPERATOR_PROOF_HEADER);
      let reason: string;
      if (!options.operatorProof) reason = 'operator proof not configured';
      else if (!token) reason = 'no operator token';
      else {
        const check = await options.operatorProof(token);
        if (check.active && grantsOperator(check.claims)) return check.claims.sub;
        reason = check.active ? 'token without the operator role and scope' : `operator token ${check.reason}`;
      }
      step.note({ tenant: options.operatorTenant, subject: sub, detail: { reason } });
      throw step.refuse(new AccessDenied('changing an operator account’s credentials needs an operator’s access token', reason), action, { reason: 'operator_proof_required' });
    },
  };
}
export type InternalChanges = ReturnType<typeof internalChanges>;

/**
 * The check of a forwarded operator token: PAS's signature (its JWKS), iss = PAS, aud = the entitlement
 * service (where the operator presented it), exp with bounded skew. The IdP does not introspect (it
 * holds no certificate PAS answers), so a token revoked at PAS still proves for the rest of its life.
 */
export function operatorProofChecker(options: { pasIssuer: string; entitlementUrl: string; clockToleranceSec: number; keys: JWTVerifyGetKey }): BearerVerifier {
  return accessTokenChecker({ issuer: options.pasIssuer, audience: options.entitlementUrl, clockToleranceSec: options.clockToleranceSec, keys: options.keys, isActive: async () => true, cacheMs: 0 });
}
