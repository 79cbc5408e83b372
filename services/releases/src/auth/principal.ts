import type { Request, RequestHandler } from 'express';
import { AccessDenied, InsufficientScope, InvalidToken, TemporarilyUnavailable } from '@keyway/kit';
import { ReleaseRights } from '@keyway/contracts';
import type { AccessTokenCheck } from '@keyway/tokens';
import { decodeJwt } from 'jose';

/** Who is asking: from a bearer access token, or from the browser session (the `__Host-` cookie). */
export interface Principal {
  sub: string;
  tenant: string;
  roles: string[];
  tokenId: string;
  /** the token's `releases` claim, a first filter only (undefined: the token carries none) */
  claimed?: ReleaseRights | undefined;
}

/** A source of principals besides the bearer token (the `__Host-` cookie session): undefined when it has none for this request. */
export type PrincipalSource = (req: Request) => Promise<Principal | undefined>;

declare global {
  namespace Express {
    interface Request {
      principal?: Principal;
      /** a good token that is not for releases (an operator login): refused where a principal is needed, not before (the report takes it) */
      principalRefused?: Error;
      /** where req.principal came from: a browser session's writes must come from this site's own pages */
      principalVia?: 'bearer' | 'session';
    }
  }
}

/** The scope a login for the distribution center asks PAS for; tokens of other scopes act as nobody here. */
const RELEASES_SCOPE = 'releases';

/** RFC 6750 §2.1: `Bearer` followed by a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const challenge = (attributes?: string) => ({ 'WWW-Authenticate': `Bearer realm="keyway"${attributes ? `, ${attributes}` : ''}` });

/** The `releases` claim, read from a token that verified already; a malformed one is no claim (the entitlement service decides). */
function claimedRights(token: string): ReleaseRights | undefined {
  const parsed = ReleaseRights.safeParse(decodeJwt(token).releases);
  return parsed.success ? parsed.data : undefined;
}

/** What the browser session knows (its access token, verified by the session at issuance and refresh), as a principal here. */
export function sessionPrincipal(who: { accessToken: string; claims: { sub: string; tid: string; roles: string[]; jti: string; scope: string } }): Principal | undefined {
  const { claims } = who;
  // the session asks PAS for scope releases; a token of another scope acts as nobody here, as a bearer one
  if (!claims.scope.split(' ').includes(RELEASES_SCOPE)) return undefined;
  return { sub: claims.sub, tenant: claims.tid, roles: claims.roles, tokenId: claims.jti, claimed: claimedRights(who.accessToken) };
}

/**
 * The one seam every route reads its caller from: a bearer access token (verified like every service
 * verifies PAS's tokens: alg, typ, iss, aud = PUBLIC_URL, exp/nbf, then introspection), or else what
 * `sessions` knows of the request (the browser session's cookie). Sets req.principal, or
 * refuses with 401 invalid_token; without any credential req.principal stays unset and the route
 * decides (JSON 401 now, the login redirect later).
 */
export function principalFrom(verify: (token: string) => Promise<AccessTokenCheck>, sessions?: PrincipalSource): RequestHandler {
  return async (req, _res, next) => {
    try {
      const authorization = req.get('authorization');
      if (authorization === undefined) {
        req.principal = await sessions?.(req);
        if (req.principal) {
          req.principalVia = 'session';
          req.log = req.log.child({ actor: { sub: req.principal.sub, tenant: req.principal.tenant, jti: req.principal.tokenId } });
        }
        return next();
      }
      const token = BEARER.exec(authorization)?.[1];
      if (!token) return next(new InvalidToken('the Authorization header is not a Bearer token', 'malformed Authorization header', challenge('error="invalid_token"')));
      let check: AccessTokenCheck;
      try {
        check = await verify(token);
      } catch (err) {
        // fail closed (style rule 10): a token that cannot be checked is not accepted
        return next(new TemporarilyUnavailable('the token cannot be checked right now; retry later', String(err), { 'Retry-After': '5' }));
      }
      if (!check.active) return next(new InvalidToken('the access token is invalid, expired or revoked', check.reason, challenge('error="invalid_token"')));
      const { claims } = check;
      if (!claims.scope.split(' ').includes(RELEASES_SCOPE)) {
        req.principalRefused = new InsufficientScope('the access token is not for the releases scope', `scope ${claims.scope}`, challenge(`error="insufficient_scope", scope="${RELEASES_SCOPE}"`));
        return next();
      }
      req.principal = { sub: claims.sub, tenant: claims.tid, roles: claims.roles, tokenId: claims.jti, claimed: claimedRights(token) };
      req.principalVia = 'bearer';
      req.log = req.log.child({ actor: { sub: claims.sub, tenant: claims.tid, jti: claims.jti } });
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** The principal of a request that must have one: 401 with a bare challenge otherwise (RFC 6750 §3). */
export function requirePrincipal(req: Request): Principal {
  if (req.principalRefused) throw req.principalRefused;
  if (!req.principal) throw new InvalidToken('authentication is required: a Bearer access token for the releases scope', 'no credentials', challenge());
  return req.principal;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A cookie rides along with requests other sites make (SameSite=Lax stops cross-site POSTs, not
 * those of another origin of the same site), so a session acts (upload, publish) only from this
 * site's own pages: `Sec-Fetch-Site: same-origin` (Fetch Metadata, no page can set it) with no other
 * `Origin`, or, from a browser without Fetch Metadata, `Origin` equal to the site's. Bearer callers
 * carry their credential themselves and are not concerned.
 */
export function sessionWritesSameOrigin(origin: string): RequestHandler {
  return (req, _res, next) => {
    if (req.principalVia !== 'session' || SAFE.has(req.method)) return next();
    const from = req.get('origin');
    const site = req.get('sec-fetch-site');
    const named = from !== undefined && from !== 'null';
    if ((site === 'same-origin' && (!named || from === origin)) || (site === undefined && from === origin)) return next();
    next(new AccessDenied('act from this site’s own pages', `cross-origin write with a session: Origin ${from?.slice(0, 200) ?? '(none)'}, Sec-Fetch-Site ${site?.slice(0, 30) ?? '(none)'}`));
  };
}
