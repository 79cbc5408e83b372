import type { Request, RequestHandler } from 'express';
import { ACR_MULTI_FACTOR } from '@keyway/contracts';
import { AccessDenied, InsufficientScope, InsufficientUserAuthentication, InvalidClient, InvalidToken, TemporarilyUnavailable } from './errors.ts';
import { callerService } from './service-auth.ts';

/** The role an operator holds, and the scope an operator login asks for (PAS `scope=operator`). */
const OPERATOR = 'operator';

/** An access token acts as an operator only with the operator role and the operator scope (login with scope=operator). */
export const grantsOperator = (claims: { roles: readonly string[]; scope: string }): boolean => claims.roles.includes(OPERATOR) && claims.scope.split(' ').includes(OPERATOR);

/** The claims of a verified access token that operator authentication looks at. */
interface BearerClaims {
  sub: string;
  tid: string;
  roles: string[];
  scope: string;
  jti: string;
  /** how and when the operator authenticated (absent on tokens from before issue 14: a single factor) */
  acr?: string | undefined;
  auth_time?: number | undefined;
}

/** RFC 7662 in spirit: a token is active (verified and not revoked) or it is not, with the reason for the log. */
type BearerCheck = { active: true; claims: BearerClaims } | { active: false; reason: string };

/**
 * Verifies a bearer access token (signature, alg, typ, iss, aud, exp/nbf) and asks its issuer whether
 * it is still active. Rejects only when that cannot be decided (the issuer does not answer).
 */
export type BearerVerifier = (token: string) => Promise<BearerCheck>;

/** RFC 6750 §2.1: `Bearer` followed by a b64token. */
/** Who passed requireOperator: set on the request for the audit trail (the actor of an admin change). */
export type OperatorIdentity = { via: 'certificate'; service: string } | { via: 'bearer'; sub: string; tenant: string; jti: string; acr?: string | undefined; authTime?: number | undefined };

declare global {
  namespace Express {
    interface Request {
      operator?: OperatorIdentity;
    }
  }
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const REALM = 'realm="keyway"';

const challenge = (attributes: string) => ({ 'WWW-Authenticate': `Bearer ${REALM}, ${attributes}` });

/**
 * RFC 9470 step-up for destructive admin actions (tenant delete, signing-key and SAS key rotation):
 * the operator's token must say a second factor was proven (acr mfa) no longer than `maxAgeSec` ago
 * (auth_time), else 401 insufficient_user_authentication with the challenge naming both, so the person
 * logs in again with a code. The operator certificate (automation) is a separate credential and is
 * not asked: MFA applies to people.
 */
export interface RecentAuthentication {
  /** STEP_UP_MAX_AGE_SEC */
  maxAgeSec: number;
  now?: () => number;
  /** records the refusal in the service's trail (step_up.refused) */
  onRefused?: (req: Request, refusal: { sub: string; tenant: string; jti: string; reason: 'acr' | 'max_age' }) => Promise<void>;
}

const stepUpRefusal = (operator: { acr?: string | undefined; authTime?: number | undefined }, options: RecentAuthentication): 'acr' | 'max_age' | undefined => {
  if (operator.acr !== ACR_MULTI_FACTOR) return 'acr';
  const nowSec = Math.floor((options.now?.() ?? Date.now()) / 1000);
  return operator.authTime === undefined || nowSec - operator.authTime > options.maxAgeSec ? 'max_age' : undefined;
};

/**
 * The operator admin APIs (entitlement `/v1/tenants…`, PAS `/admin/v1/signing-keys…`, PAC
 * `/admin/v1/tenants/:t/sas-keys/rotate`) answer either of two callers:
 * - the operator client certificate from the Keyway CA (mTLS, SPIFFE ID spiffe://<trust domain>/operator);
 * - `Authorization: Bearer <access token>` of a user holding the `operator` role, issued for the
 *   `operator` scope (a feed login of the same user does not count), verified by `verify`.
 *
 * Refusals follow RFC 6750 §3.1: a token that is malformed, forged, expired, revoked or not meant for
 * this service is 401 invalid_token; a good token without the operator role and scope is 403
 * insufficient_scope. No credentials at all is 401 with a bare challenge (§3: no error code), and a
 * certificate of another service without a token stays 403 access_denied.
 */
export function requireOperator(options: { verify: BearerVerifier }): RequestHandler {
  return async (req, _res, next) => {
    const caller = callerService(req);
    const authorization = req.get('authorization');
    if (caller === OPERATOR) {
      req.log = req.log.child({ actor: { via: 'certificate', service: caller } });
      req.operator = { via: 'certificate', service: caller };
      return next();
    }
    if (authorization === undefined) {
      if (caller) return next(new AccessDenied('this service may not call this endpoint', `caller ${caller}`));
      return next(
        new InvalidClient('operator authentication is required: a Bearer access token for the operator scope, or the operator client certificate', 'no credentials', {
          'WWW-Authenticate': `Bearer ${REALM}`,
        }),
      );
    }
    const token = BEARER.exec(authorization)?.[1];
    if (!token) return next(new InvalidToken('the Authorization header is not a Bearer token', 'malformed Authorization header', challenge('error="invalid_token"')));

    let check: BearerCheck;
    try {
      check = await options.verify(token);
    } catch (err) {
      // Fail closed (style.md rule 10): a token that cannot be checked is not accepted.
      return next(new TemporarilyUnavailable('the token cannot be checked right now; retry later', String(err), { 'retry-after': '5' }));
    }
    if (!check.active) {
      return next(new InvalidToken('the access token is invalid, expired or revoked', check.reason, challenge('error="invalid_token"')));
    }
    const { claims } = check;
    if (!grantsOperator(claims)) {
      return next(
        new InsufficientScope(
          'the access token does not grant the operator scope',
          `sub ${claims.sub} roles ${claims.roles.join(',')} scope ${claims.scope}`,
          challenge(`error="insufficient_scope", scope="${OPERATOR}"`),
        ),
      );
    }
    req.log = req.log.child({ actor: { via: 'bearer', sub: claims.sub, tenant: claims.tid, jti: claims.jti } });
    req.operator = { via: 'bearer', sub: claims.sub, tenant: claims.tid, jti: claims.jti, acr: claims.acr, authTime: claims.auth_time };
    next();
  };
}

/** RFC 9470 step-up after requireOperator (which sets req.operator): the certificate passes, a bearer token must be recent and mfa. */
export function requireRecentAuthentication(options: RecentAuthentication): RequestHandler {
  return async (req, _res, next) => {
    const operator = req.operator;
    if (operator?.via === 'certificate') return next();
    if (!operator) return next(new AccessDenied('operator authentication is required', 'step-up without requireOperator before it'));
    const refusal = stepUpRefusal(operator, options);
    if (!refusal) return next();
    const description = refusal === 'acr' ? 'this action requires a login with a second factor' : `this action requires a login with a second factor within the last ${options.maxAgeSec} seconds`;
    try {
      await options.onRefused?.(req, { sub: operator.sub, tenant: operator.tenant, jti: operator.jti, reason: refusal });
    } catch (err) {
      // the refusal stands whether or not the trail took it
      req.log.warn('step_up.audit_failed', { err });
    }
    next(
      new InsufficientUserAuthentication(
        description,
        `sub ${operator.sub} acr ${operator.acr ?? 'none'} auth_time ${operator.authTime ?? 'none'}`,
        challenge(`error="insufficient_user_authentication", error_description="${description}", acr_values="${ACR_MULTI_FACTOR}", max_age=${options.maxAgeSec}`),
      ),
    );
  };
}
