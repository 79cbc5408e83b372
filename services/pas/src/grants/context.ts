import { randomUUID } from 'node:crypto';
import { acrOf, type AuthenticationContext, type TokenRequest, type TokenResponse } from '@keyway/contracts';
import type { FeedRights, ReleaseRights } from '@keyway/contracts';
import type { EntitlementClient, IdpClient } from '@keyway/clients';
import type { AuditFields, AuditLog, AuditScope, NoiseGate, SecurityMetrics } from '@keyway/audit';
import type { Logger } from '@keyway/kit';
import { InvalidScope } from '@keyway/kit';
import { issueAccessToken, issueRefreshToken, type KeyRing, type Signer, type TokenSettings } from '@keyway/tokens';
import type { BrowserClientRegistry } from '../authorization/clients.ts';
import type { AuthorizationCodes } from '../authorization/codes.ts';
import type { RevokedDpopKeys } from '../dpop/revoked-keys.ts';
import type { RefreshFamilies } from '../families/refresh-family.ts';
import type { LoginThrottle } from '../throttling/login-throttle.ts';
import { scopeOf, type Access } from './authorize.ts';

export interface GrantContext {
  /** the signing keys as this instance last reloaded them (app.ts reads the shared ring on every access): use it, never keep it */
  readonly ring: KeyRing;
  /** what signs the tokens issued now (the ring's active key, or a KMS): every grant signs through it, never with a key */
  readonly signer: Signer;
  settings: TokenSettings;
  idp: IdpClient;
  entitlement: EntitlementClient;
  families: RefreshFamilies;
  /** PAS's audit stream: every token request, revocation and signing-key rotation is recorded */
  audit: AuditLog;
  metrics: SecurityMetrics;
  /** strict revocation (design.md): entitlements are re-checked on refresh and removals revoke families */
  strict: boolean;
  /** a spent refresh token presented again within this many seconds is refused without revoking its family */
  reuseLeewaySec: number;
  /** failed logins per account and source (password and client assertions), shared by every instance */
  throttle: LoginThrottle;
  /** refusals without an authenticated party: limited per source, one refusals.aggregated event per source and window */
  noise: NoiseGate;
  /** the registered browser clients (BROWSER_CLIENTS) of the authorization code flow */
  browserClients: BrowserClientRegistry;
  /** the authorization codes the login page issues and the token endpoint redeems */
  codes: AuthorizationCodes;
  /** DPoP (RFC 9449) at the token endpoint: revoked keys, and the login grants that must use it; absent = none revoked, none required */
  dpop?: { revoked: RevokedDpopKeys; requiredFor: ReadonlySet<string> };
}

/** What a token request is as the grants see it, once the transport is parsed away. */
export interface GrantOrigin {
  /** what the trail knows of the request: its id and source address (requestFields) */
  fields: AuditFields;
  /** the address logins are throttled and noise is limited by (throttling/login-throttle.ts sourceOf) */
  source: string;
  log: Logger;
  /**
   * The request's DPoP proof (RFC 9449 §4.3), checked for this request and, when `bound` is given, for
   * that key: the thumbprint of its key, undefined when the request carries none and none is needed.
   * Absent where no proof can come (the login page).
   */
  dpop?: (bound?: string) => Promise<string | undefined>;
}

export interface Grant<G extends TokenRequest['grant_type']> {
  grantType: G;
  /** the audit action of a pair issued by this grant: token.issued (a login) or token.refreshed */
  issued: 'token.issued' | 'token.refreshed';
  /** grants only note what they learn and name their refusals; the audited step (grants/token-request.ts) records the outcome */
  handler: (params: Extract<TokenRequest, { grant_type: G }>, context: GrantContext, origin: GrantOrigin, audit: AuditScope) => Promise<TokenResponse>;
}

export const DEFAULT_CLIENT_ID = 'keyway-importer';

/**
 * Operator access tokens are for PAC and the admin APIs (RFC 8707 §2: "aud" names each resource the
 * token is for); feed access tokens for PAC only, so they are refused by the admin APIs; releases
 * access tokens for the releases service only, so PAC and the admin APIs refuse them.
 */
function accessAudience(settings: TokenSettings, access: Access): string | string[] {
  if (access.kind === 'feeds') return settings.accessAudience;
  if (access.kind === 'releases') {
    // configuration taken away since the login (a refresh): no audience, no token
    if (settings.releasesAudience === undefined) throw new InvalidScope('scope releases is not offered here (PAS has no RELEASES_AUDIENCE)');
    return settings.releasesAudience;
  }
  return [...new Set([settings.accessAudience, ...(settings.adminAudiences ?? [])])];
}

/**
 * Issues an access + refresh pair; a new family starts unless one is being continued. A feed pair
 * carries `rights`, feed by feed, as the entitlement service granted them (PAC mints only those); a
 * releases pair carries `releases`, product by product. The trail gets
 * the access token's jti as the token id, with the refresh token's jti and the family id (style rule
 * 11: identifiers, never the tokens).
 */
export async function issuePair(
  context: GrantContext,
  audit: AuditScope,
  subject: { sub: string; tid: string; roles: string[]; access: Access; rights: FeedRights; releases?: ReleaseRights; client_id: string },
  /** how and when the holder authenticated: the login's, or (a refresh) the presented token's unchanged */
  authentication: AuthenticationContext,
  /**
   * The family to continue (spentJti: the refresh token it rotates), or the id of the new one (a code's
   * redemption names it first); jkt: the DPoP key the family is bound to (RFC 9449 §5), which both tokens name in cnf.
   */
  family?: { fid?: string | undefined; spentJti?: string | undefined; jkt?: string | undefined },
): Promise<TokenResponse> {
  const { signer, settings, families } = context;
  const scope = scopeOf(subject.access);
  const claims = {
    sub: subject.sub,
    tid: subject.tid,
    roles: subject.roles,
    scope,
    client_id: subject.client_id,
    // OpenID Connect Core §2: the admin APIs demand acr mfa and a recent auth_time (RFC 9470 step-up)
    amr: authentication.amr,
    acr: acrOf(authentication.amr),
    auth_time: authentication.auth_time,
    ...(subject.access.kind === 'feeds' && { rights: subject.rights }),
    ...(subject.access.kind === 'releases' && { releases: subject.releases ?? {} }),
    ...(family?.jkt !== undefined && { cnf: { jkt: family.jkt } }),
  };
  const fid = family?.fid ?? randomUUID();
  const [access, refresh] = await Promise.all([
    issueAccessToken(signer, settings, { ...claims, fid }, accessAudience(settings, subject.access)),
    issueRefreshToken(signer, settings, { ...claims, fid }),
  ]);
  const ttlMs = settings.refreshTtlSec * 1000;
  if (family?.fid !== undefined && family.spentJti !== undefined) {
    if (!(await families.rotate(fid, family.spentJti, refresh.jti, ttlMs, context.reuseLeewaySec * 1000, family.jkt))) throw new FamilyRaceLost();
  } else {
    await families.start({ fid, sub: subject.sub, tid: subject.tid, scope, ...(family?.jkt !== undefined && { jkt: family.jkt }) }, refresh.jti, ttlMs);
  }
  const spent: Record<string, string> = family?.spentJti !== undefined ? { spent_jti: family.spentJti } : {};
  const bound: Record<string, string> = family?.jkt !== undefined ? { jkt: family.jkt } : {};
  audit.note({
    tokenId: access.jti,
    clientId: subject.client_id,
    detail: { refresh_jti: refresh.jti, family: fid, scope: scope.slice(0, 512), amr: authentication.amr.join(' '), ...spent, ...bound },
  });
  return {
    access_token: access.token,
    token_type: family?.jkt === undefined ? 'Bearer' : 'DPoP',
    expires_in: settings.accessTtlSec,
    refresh_token: refresh.token,
    refresh_expires_in: settings.refreshTtlSec,
    scope,
  };
}

/** Seconds since the epoch on the token clock (TokenSettings.now): auth_time of a login happening now. */
export const authTimeNow = (settings: TokenSettings): number => Math.floor((settings.now?.() ?? Date.now()) / 1000);

/** Another refresh of the same token rotated the family first. */
export class FamilyRaceLost extends Error {
  override name = 'FamilyRaceLost';
}
