import type { Express } from 'express';
import type { EntitlementClient, IdpClient } from '@keyway/clients';
import { createAuditLog, noiseGate, readinessWithTrail, securityMetrics, stepUpRefusals, type AuditDb } from '@keyway/audit';
import { createBaseApp, finishApp, requireOperator, requireRecentAuthentication, type Logger } from '@keyway/kit';
import { pasApi } from '@keyway/contracts';
import type { Broker, TopicRef } from '@keyway/broker';
import type { Store } from '@keyway/store';
import { familyRevocationAnnouncer } from './revocation/announce.ts';
import { revokeOnEntitlementChange } from './revocation/on-entitlement-change.ts';
import type { TokenSettings } from '@keyway/tokens';
import { browserClientRegistry, type BrowserClient } from './authorization/clients.ts';
import { authorizationCodes } from './authorization/codes.ts';
import { passkeyEndpoint, passkeyEnrolments } from './authorization/passkeys.ts';
import { pendingAuthorizations } from './authorization/pending-requests.ts';
import { secondSteps } from './authorization/second-step.ts';
import { mfaEndpoint } from './endpoints/mfa.ts';
import { authorizationEndpoint } from './endpoints/authorization.ts';
import { discoveryEndpoint } from './endpoints/discovery.ts';
import { dpopKeysEndpoint } from './endpoints/dpop-keys.ts';
import { revokedDpopKeys } from './dpop/revoked-keys.ts';
import { introspectionEndpoint } from './endpoints/introspection.ts';
import { revocationEndpoint } from './endpoints/revocation.ts';
import { jwksEndpoint } from './endpoints/jwks.ts';
import { signingKeysEndpoint } from './endpoints/signing-keys.ts';
import { sshCertificateEndpoints } from './endpoints/ssh-certificates.ts';
import { tokenEndpoint } from './endpoints/token.ts';
import { refreshFamilies } from './families/refresh-family.ts';
import type { SharedKeyRing } from './keys/ring.ts';
import { DEFAULT_SIGNING_KEY_LEAD_SEC, rotationPolicy } from './keys/rotate.ts';
import { DEFAULT_SSH_CERT_TTL_SEC, DEFAULT_SSH_HOST_CERT_TTL_SEC, type SshCertificateAuthority } from './ssh/authority.ts';
import { ownOperatorTokenChecker } from './tokens/own-tokens.ts';
import { DEFAULT_LOGIN_LIMITS, loginThrottle, type LoginLimits } from './throttling/login-throttle.ts';

type RevocationMode = 'strict' | 'lenient';

export interface PasOptions {
  settings: TokenSettings;
  /** strict (default): removals revoke families and refresh re-checks entitlements; lenient: access lasts until the refresh token expires */
  revocationMode?: RevocationMode;
  /** how long a new signing key is published before a rotation may make it sign (keys/rotate.ts) */
  signingKeyLeadSec?: number;
  /** RFC 9470 step-up: signing-key rotation needs an operator login with a second factor at most this old (default 300) */
  stepUpMaxAgeSec?: number;
  /** see GrantContext.reuseLeewaySec (default 2) */
  refreshReuseLeewaySec?: number;
  /** login throttling and the per-source limit of unauthenticated refusals (default DEFAULT_LOGIN_LIMITS) */
  loginLimits?: Partial<LoginLimits>;
  /** the window unauthenticated refusals are aggregated over, one audit event per source (default 60 s) */
  refusalWindowSec?: number;
  /** the registered browser clients of the authorization code flow (default: none) */
  browserClients?: BrowserClient[];
  /** how long an authorization code may be redeemed (default 60 s) */
  authorizationCodeTtlSec?: number;
  /**
   * DPoP (RFC 9449) at the token endpoint: server nonces required (default true), how far a proof's iat
   * may be from now (default 60 s), the login grants that must present a proof (default none)
   */
  dpop?: { requireNonce?: boolean; proofWindowSec?: number; requiredFor?: readonly string[] };
  /** the SSH CA's certificate lifetimes: users' (default 600 s) and the SFTP server's host key (default 7 days) */
  /** hostNames: the names host certificates may carry (SSH_HOST_CERT_NAMES); none: no host certificate is issued */
  ssh?: { userCertTtlSec?: number; hostCertTtlSec?: number; hostNames?: string[] };
}

export interface PasDeps {
  /** the system of record: the signing key ring and the family-revocation outbox */
  records: Store;
  /** hot, expiring state: refresh families, login throttling, refusal counters */
  store: Store;
  /** where it appends its audit stream "pas": its database, as its own role */
  auditDb: AuditDb;
  /** the signing keys every PAS instance shares through the store (keys/ring.ts) */
  ring: SharedKeyRing;
  /** the SSH CA every PAS instance shares through the store (ssh/authority.ts) */
  sshCa: SshCertificateAuthority;
  idp: IdpClient;
  entitlement: EntitlementClient;
  /** where the entitlement service's change events arrive (followed in strict mode) */
  broker: Broker;
  /** the change-event topic (default: the shared entitlement-changes topic) */
  changeEventsTopic?: TopicRef;
  logger: Logger;
}

export type PasApp = Express & { close(): Promise<void> };

/** The OAuth 2.0 authorization server: the only service that mints JWTs. */
export function createApp(options: PasOptions, deps: PasDeps): PasApp {
  const audit = createAuditLog({ db: deps.auditDb, store: deps.store, service: 'pas', logger: deps.logger });
  const limits = { ...DEFAULT_LOGIN_LIMITS, ...options.loginLimits };
  const app = createBaseApp({
    service: 'pas',
    logger: deps.logger,
    // style rule 10: not ready unless the trail takes writes, since no token is issued without it
    readiness: [{ name: 'database', check: () => deps.records.ping() }, ...readinessWithTrail(deps.store, audit)],
    openapi: pasApi,
  });
  const announcer = familyRevocationAnnouncer(deps.records, deps.broker, deps.logger, deps.changeEventsTopic);
  const revokedKeys = revokedDpopKeys(deps.records);
  const context = {
    // Read on every use, so issuance and verification see the ring as last reloaded (a rotation here or on another instance).
    get ring() {
      return deps.ring.current();
    },
    get signer() {
      return deps.ring.current().signer();
    },
    settings: options.settings,
    idp: deps.idp,
    entitlement: deps.entitlement,
    families: refreshFamilies(deps.store, announcer.announce),
    audit,
    metrics: securityMetrics(),
    strict: (options.revocationMode ?? 'strict') === 'strict',
    reuseLeewaySec: options.refreshReuseLeewaySec ?? 2,
    throttle: loginThrottle(deps.store, limits),
    noise: noiseGate({
      log: audit,
      store: deps.store,
      logger: deps.logger,
      perSource: limits.refusalsPerSource,
      limitWindowMs: limits.windowSec * 1000,
      windowMs: (options.refusalWindowSec ?? 60) * 1000,
    }),
    browserClients: browserClientRegistry(options.browserClients ?? []),
    codes: authorizationCodes(deps.store, options.authorizationCodeTtlSec ?? 60),
    pending: pendingAuthorizations(deps.store),
    dpop: { revoked: revokedKeys, requiredFor: new Set(options.dpop?.requiredFor ?? []) },
    enrolments: passkeyEnrolments(deps.store),
    secondSteps: secondSteps(deps.store),
  };
  const authenticateOperator = requireOperator({ verify: ownOperatorTokenChecker(context) });
  const dpop = { store: deps.store, publicOrigin: options.settings.issuer, requireNonce: options.dpop?.requireNonce ?? true, iatWindowSec: options.dpop?.proofWindowSec ?? 60 };
  app.use(authorizationEndpoint(context));
  app.use(passkeyEndpoint(context));
  app.use(mfaEndpoint(context));
  app.use(tokenEndpoint(context, dpop));
  app.use(revocationEndpoint(context));
  app.use(introspectionEndpoint(context));
  app.use(discoveryEndpoint(options.settings.issuer, options.settings.releasesAudience !== undefined, deps.sshCa.publicKeyLine));
  app.use(jwksEndpoint(deps.ring));
  app.use(
    sshCertificateEndpoints(context, {
      ca: deps.sshCa,
      userTtlSec: options.ssh?.userCertTtlSec ?? DEFAULT_SSH_CERT_TTL_SEC,
      hostTtlSec: options.ssh?.hostCertTtlSec ?? DEFAULT_SSH_HOST_CERT_TTL_SEC,
      hostNames: options.ssh?.hostNames ?? [],
      dpop,
    }),
  );
  app.use(
    signingKeysEndpoint({
      store: deps.records,
      ring: deps.ring,
      policy: rotationPolicy(options.settings, { leadSec: options.signingKeyLeadSec ?? DEFAULT_SIGNING_KEY_LEAD_SEC, reloadMs: deps.ring.reloadMs }),
      authenticate: authenticateOperator,
      // a destructive action: a person's token must be a recent login with a second factor (RFC 9470)
      authenticateRotation: [authenticateOperator, requireRecentAuthentication({ maxAgeSec: options.stepUpMaxAgeSec ?? 300, now: options.settings.now, onRefused: stepUpRefusals(audit) })],
      audit,
    }),
  );
  app.use(
    dpopKeysEndpoint({
      revoked: revokedKeys,
      families: context.families,
      announce: announcer.announceDpopKey,
      authenticate: authenticateOperator,
      audit,
      metrics: context.metrics,
      logger: deps.logger,
    }),
  );
  const follower = context.strict ? revokeOnEntitlementChange(deps.broker, context.families, deps.logger, context, deps.changeEventsTopic) : undefined;
  return Object.assign(finishApp(app, deps.logger), {
    close: async () => {
      announcer.close();
      await follower?.stop();
      await context.noise.close();
    },
  });
}

export function tokenSettings(config: {
  PUBLIC_URL: string;
  ACCESS_AUDIENCE: string;
  ADMIN_AUDIENCES: string[];
  ACCESS_TOKEN_TTL_SEC: number;
  REFRESH_TOKEN_TTL_SEC: number;
  CLOCK_TOLERANCE_SEC: number;
  RELEASES_AUDIENCE?: string | undefined;
}): TokenSettings {
  return {
    issuer: config.PUBLIC_URL,
    accessAudience: config.ACCESS_AUDIENCE,
    adminAudiences: config.ADMIN_AUDIENCES,
    ...(config.RELEASES_AUDIENCE !== undefined && { releasesAudience: config.RELEASES_AUDIENCE }),
    refreshAudience: config.PUBLIC_URL,
    accessTtlSec: config.ACCESS_TOKEN_TTL_SEC,
    refreshTtlSec: config.REFRESH_TOKEN_TTL_SEC,
    clockToleranceSec: config.CLOCK_TOLERANCE_SEC,
  };
}
