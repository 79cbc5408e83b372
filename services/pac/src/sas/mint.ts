import { attributes, audited, type AuditFields, type AuditLog, type NoiseGate, type SecurityMetrics } from '@keyway/audit';
import { AUDIT_FEED, feedsFromScope, rightsWithin, type SasRequest, tokenFeedRights, topicResource, type Introspection, type Rights, type SasResponse } from '@keyway/contracts';
import { DpopRefused, InsufficientScope, InvalidToken, TemporarilyUnavailable, type Logger } from '@keyway/kit';
import { signSas } from '@keyway/sas';
import { TokenError, verifyRefreshToken, type JWTVerifyGetKey, type RefreshClaims } from '@keyway/tokens';
import type { IssuedRegistry, IssuedSasKey } from '../issued/registry.ts';
import type { TenantKeyStore } from '../keys/tenant-keys.ts';
import { type HolderCheck, refusalOf } from './holder-check.ts';

export type ParsedSasRequest = ReturnType<typeof SasRequest.parse>;

/**
 * How many expiries a mint tries so that its key is the holder's own: 60 holders per feed, right and
 * second, each key a second shorter-lived than the one before; never more than half the lifetime.
 */
const MAX_EXPIRY_STEPS = 60;

export interface SasMintOptions {
  pasIssuer: string;
  topicBaseUrl: string;
  sasTtlSec: number;
  clockToleranceSec: number;
  now?: () => number;
}

export interface SasMintDeps {
  pasKeys: JWTVerifyGetKey;
  introspect: (refreshToken: string) => Promise<Introspection>;
  /** strict revocation: the entitlement service's decision, now, for the token's holder on the feed (issue 11); lenient: unset */
  holders?: HolderCheck;
  keys: TenantKeyStore;
  issued: IssuedRegistry;
  audit: AuditLog;
  metrics: SecurityMetrics;
  /** unauthenticated refusals: limited per source, one refusals.aggregated event per source and window */
  noise: NoiseGate;
}

/** Who asks, once the transport is parsed away. */
export interface SasOrigin {
  /** what the trail knows of the request: its id and source address (requestFields), the rights asked for */
  fields: AuditFields;
  /** the address noise is limited by */
  source: string;
  log: Logger;
  /**
   * RFC 9449: the request's DPoP proof checked for the credential (ath) and, when the token is bound,
   * its key (dpopGuard.check): the proven key's thumbprint, undefined when the request has no proof
   * and needs none; throws the refusal. Absent: no proof can be checked, so a bound token is refused.
   */
  proveKey?: (expected: { credential: string; jkt: string | undefined }) => Promise<{ jkt: string } | undefined>;
}

/** The resource asked for must be one of the token's feeds, on the token's tenant. */
function resolveTopic(claims: RefreshClaims, topicBaseUrl: string, resource: string | undefined): { topic: string; resource: string } {
  const feeds = feedsFromScope(claims.scope);
  if (resource === undefined) {
    const topic = feeds[0];
    if (!topic) throw new InsufficientScope('the token grants no feed');
    return { topic, resource: topicResource(topicBaseUrl, claims.tid, topic) };
  }
  const topic = feeds.find((feed) => topicResource(topicBaseUrl, claims.tid, feed).toLowerCase() === resource.toLowerCase());
  if (!topic) throw new InsufficientScope('the resource is not a feed this token grants');
  return { topic, resource: topicResource(topicBaseUrl, claims.tid, topic) };
}

/** The feed, resource and rights a request asks of a token, or why not, with what the trail learns on the way. */
type Scoped = ({ ok: true; topic: string; resource: string; rights: Rights } | { ok: false; error: unknown }) & { notes: AuditFields[] };

/**
 * From the token's claims alone: exactly the rights the token grants on the feed (the entitlement
 * service's answer, role table), or all of them when none are asked for.
 */
function scopeOf(claims: RefreshClaims, topicBaseUrl: string, request: ParsedSasRequest): Scoped {
  const notes: AuditFields[] = [];
  try {
    const { topic, resource } = resolveTopic(claims, topicBaseUrl, request.resource);
    notes.push({ detail: { topic } });
    const granted = tokenFeedRights(claims, [topic])[topic];
    const rights: Rights | undefined = request.rights ?? granted;
    if (rights === undefined) throw new InsufficientScope('the token grants no right on this feed');
    notes.push({ detail: { rights } });
    // Only Keyway writes a tenant's audit feed (the entitlement service's export): a key that could
    // send to it would let the tenant forge its own trail.
    if (topic === AUDIT_FEED && rights !== 'listen') throw new InsufficientScope('the audit feed is read-only: ask for the listen right');
    if (!rightsWithin(rights, granted)) throw new InsufficientScope(`the token does not grant the ${rights} right on this feed`);
    return { ok: true, topic, resource, rights, notes };
  } catch (error) {
    return { ok: false, error, notes };
  }
}

/** A settled answer's value, or its rejection thrown. */
function settledValue<T>(settled: PromiseSettledResult<T>): T {
  if (settled.status === 'rejected') throw settled.reason;
  return settled.value;
}

/**
 * A refresh token → a one-day SAS key for one tenant topic (steps 5 and 6), without HTTP: returns the
 * key or throws the OAuthError POST /v1/sas answers.
 *
 * The trail, one audited step: sas_key.minted with the key id as token id (never the key or its sig,
 * style rule 11) and the refresh token's jti; sas_key.denied for a token that does not verify or does
 * not grant the resource or rights; sas_key.failed when PAC could not decide. The key is returned only
 * once its minting is in the trail (style rule 10): otherwise ServerError, and the key never leaves.
 *
 * Issue 9: a refusal before the token has verified (garbage, wrongly signed, expired, a malformed
 * body) names nobody and costs the caller nothing, so it is not an event of its own: it is counted per
 * source and minute (one refusals.aggregated event each) and a source past its limit gets 429 before
 * any work. A refusal of a verified token (inactive, outside its scope) stays a sas_key.denied event.
 *
 * `request` is the parsed request, or its parser: parsed inside the step, a malformed body is counted
 * like any other refusal.
 */
export async function mintSasKey(options: SasMintOptions, deps: SasMintDeps, origin: SasOrigin, request: ParsedSasRequest | (() => ParsedSasRequest)): Promise<SasResponse> {
  return audited(
    deps,
    {
      action: 'sas_key.minted',
      fields: origin.fields,
      count: (outcome, fields) => deps.metrics.sasKeysMinted.add(1, attributes({ tenant: fields.tenant, rights: fields.detail?.rights, outcome })),
      noise: { gate: deps.noise, source: origin.source },
    },
    async (audit) => {
      await deps.noise.admit(origin.source);
      const parsed = typeof request === 'function' ? request() : request;
      if (parsed.rights !== undefined) audit.note({ detail: { rights: parsed.rights } });
      return mint(options, deps, parsed, origin, audit.note);
    },
  );
}

async function mint(options: SasMintOptions, deps: SasMintDeps, request: ParsedSasRequest, origin: SasOrigin, note: (fields: AuditFields) => void): Promise<SasResponse> {
  const { log } = origin;
  const claims = await verifyRefreshToken(request.refresh_token, deps.pasKeys, {
    issuer: options.pasIssuer,
    audience: options.pasIssuer,
    clockToleranceSec: options.clockToleranceSec,
    now: options.now,
  }).catch((err: unknown) => {
    if (err instanceof TokenError) throw new InvalidToken('the refresh token is invalid, expired or revoked', err.code);
    throw err;
  });
  note({ tenant: claims.tid, subject: claims.sub, clientId: claims.client_id, detail: { refresh_jti: claims.jti, family: claims.fid } });
  // RFC 9449: a refresh token bound to a key (cnf.jkt) is of use only with a proof signed by that key.
  // A proof with an unbound token binds the new SAS key to the key it proves (as PAS binds a token, §5).
  const bound = claims.cnf?.jkt;
  if (bound !== undefined && origin.proveKey === undefined) throw new DpopRefused(400, 'invalid_dpop_proof', 'the refresh token is bound to a key (DPoP): a DPoP proof signed with it is required');
  const proven = await origin.proveKey?.({ credential: request.refresh_token, jkt: bound });
  if (proven) note({ detail: { jkt: proven.jkt } });
  // The feed and rights the request asks of this token, from its claims alone; a refusal among them
  // is thrown below, after the token is known to be current, as ever.
  const scoped = scopeOf(claims, options.topicBaseUrl, request);
  // What needs a round trip asks at once: only PAS knows whether the token is still current (RFC
  // 7662), only PAC's records whether its family was revoked here, only the entitlement service what
  // holds now (issue 11: a change event PAS or PAC has not applied yet changes nothing); and the
  // tenant's signing key. Each answer is then weighed in the order the checks always had.
  const holderFeed = scoped.ok && deps.holders ? { sub: claims.sub, tenant: claims.tid, feed: scoped.topic } : undefined;
  const [status, familyRevoked, decision, namespaceKey] = await Promise.allSettled([
    deps.introspect(request.refresh_token),
    deps.issued.isFamilyRevoked(claims.fid),
    holderFeed && deps.holders?.(holderFeed),
    deps.keys.signingKey(claims.tid),
  ]);
  if (status.status === 'rejected') throw new TemporarilyUnavailable('the token cannot be checked right now; retry later', String(status.reason), { 'retry-after': '5' });
  if (!status.value.active) throw new InvalidToken('the refresh token is invalid, expired or revoked', 'inactive at introspection');
  if (settledValue(familyRevoked)) throw new InvalidToken('the refresh token is invalid, expired or revoked', 'family revoked');
  for (const fields of scoped.notes) note(fields);
  if (!scoped.ok) throw scoped.error;
  const { topic, resource, rights } = scoped;
  if (holderFeed) {
    if (decision.status === 'rejected') throw new TemporarilyUnavailable('the grant cannot be checked right now; retry later', `entitlement: ${String(decision.reason)}`, { 'retry-after': '5' });
    const refusal = refusalOf(decision.value!, rights);
    if (refusal === 'rights_not_granted') throw new InsufficientScope(`the ${rights} right on this feed is no longer granted`);
    if (refusal) throw new InvalidToken('the refresh token is invalid, expired or revoked', `entitlement: ${refusal}`);
  }

  const nowSec = Math.floor((options.now?.() ?? Date.now()) / 1000);
  const signingKey = settledValue(namespaceKey);
  // Every holder gets a key of their own: while another holder has the key for this second, the one a second earlier.
  const steps = Math.min(MAX_EXPIRY_STEPS, Math.max(1, Math.floor(options.sasTtlSec / 2)));
  let minted: { key: IssuedSasKey; sasKey: string } | undefined;
  for (let earlier = 0; minted === undefined; earlier++) {
    if (earlier === steps) throw new TemporarilyUnavailable('too many keys minted for this feed right now; retry later', `${steps} expiries taken`, { 'retry-after': '1' });
    const expiry = nowSec + options.sasTtlSec - earlier;
    const { sasKey, keyId } = signSas(signingKey, rights, resource, expiry);
    const key: IssuedSasKey = { keyId, tenant: claims.tid, topic, rights, sub: claims.sub, fid: claims.fid, expiresAt: expiry, ...(proven && { jkt: proven.jkt }) };
    const issued = await deps.issued.issue(key);
    if (issued === 'revoked') throw new InvalidToken('the refresh token is invalid, expired or revoked', 'family revoked while minting');
    if (issued === 'issued') minted = { key, sasKey };
  }
  const { sasKey, key } = minted;
  const { keyId, expiresAt: expiry } = key;
  const expiresAt = new Date(expiry * 1000).toISOString();
  note({ tokenId: keyId, detail: { expires_at: expiresAt } });
  log.info('sas_key.minted', { tenant: claims.tid, topic, rights, keyId, sub: claims.sub, jti: claims.jti });
  return { sas_key: sasKey, resource, rights, expires_at: expiresAt, key_id: keyId };
}
