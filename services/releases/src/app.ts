import { createAuditLog, readinessWithTrail, type AuditDb } from '@keyway/audit';
import { releasesApi, type Introspection } from '@keyway/contracts';
import { createBaseApp, finishApp, type Logger, type TlsSource } from '@keyway/kit';
import { browserSession } from '@keyway/web-session';
import type { createScanner } from '@keyway/scan';
import type { Store } from '@keyway/store';
import { accessTokenChecker, operatorTokenChecker, type JWTVerifyGetKey } from '@keyway/tokens';
import type { Express } from 'express';
import type { ReleaseAuthorizer } from './auth/authorizer.ts';
import { principalFrom, sessionPrincipal, sessionWritesSameOrigin, type PrincipalSource } from './auth/principal.ts';
import { catalog as openCatalog } from './catalog/catalog.ts';
import { releaseRoutes } from './routes/api.ts';
import { assetRoutes, browserRefusals, loginFirst, pageRoutes } from './routes/pages.ts';
import { scanWorker } from './scan/scan-worker.ts';
import { diskBlobStore } from './storage/blob-store.ts';
import type { StorageLayout } from './storage/layout.ts';
import { uploadRoutes } from './uploads/tus.ts';
import type { SftpDeps } from './sftp/session.ts';

export interface ReleasesOptions {
  /** this service's URL: the "aud" of the access tokens it accepts (user and operator alike) */
  publicUrl: string;
  /** PAS: the issuer of the access tokens */
  pasIssuer: string;
  clockToleranceSec: number;
  /** how long PAS's introspection answer for a token is reused (default 5 s) */
  operatorTokenCacheMs?: number;
  maxFileBytes: number;
  /** clamd's StreamMaxLength (CLAMD_STREAM_MAX_LENGTH): larger files are refused at creation */
  scannableBytes: number;
  scanRetryMs: number;
  /** an unfinished upload is deleted this long after its creation */
  uploadExpiryMs: number;
  /**
   * The browser login (@keyway/web-session): PAS as the issuer, this site as its public client with
   * the redirect URI PUBLIC_URL/oauth2/callback and scope `releases`. Unset: bearer tokens only.
   */
  session?: { issuer: string; clientId: string /** PAS is trusted by this service's CA bundle, followed as it is renewed */; tls: TlsSource };
  now?: () => number;
}

export interface ReleasesDeps {
  /** products, versions, file metadata and uploads (the system of record) */
  records: Store;
  /** hot state (the audit log's noise counters) */
  store: Store;
  auditDb: AuditDb;
  layout: StorageLayout;
  scanner: ReturnType<typeof createScanner>;
  authorizer: ReleaseAuthorizer;
  pasKeys: JWTVerifyGetKey;
  introspect: (accessToken: string) => Promise<Introspection>;
  /** a second source of principals besides bearer tokens, when options.session is unset (tests) */
  sessions?: PrincipalSource;
  logger: Logger;
}

export type ReleasesApp = Express & {
  close(): Promise<void>;
  scans: { kick(): void; idle(): Promise<void> };
  /** what the SFTP front shares with the HTTPS routes: the same catalog, files, scanner and trail */
  sftpDeps: Pick<SftpDeps, 'catalog' | 'blobs' | 'layout' | 'audit' | 'scans' | 'logger'>;
};

/**
 * The software distribution center (issue 13): resumable uploads (tus), scanning with clamd, publish
 * and withdraw, downloads with Range and a strong ETag, the JSON API and the landing pages. Every
 * request that reads or writes a release asks the entitlement service (ReleaseAuthorizer).
 */
export function createApp(options: ReleasesOptions, deps: ReleasesDeps): ReleasesApp {
  const audit = createAuditLog({ db: deps.auditDb, store: deps.store, service: 'releases', logger: deps.logger, now: options.now });
  const app = createBaseApp({
    service: 'releases',
    logger: deps.logger,
    readiness: [{ name: 'database', check: () => deps.records.ping() }, ...readinessWithTrail(deps.store, audit), { name: 'scanner', check: () => deps.scanner.ping() }],
    openapi: releasesApi,
  });
  const catalog = openCatalog(deps.records);
  const blobs = diskBlobStore(deps.layout.root);
  const scans = scanWorker({ catalog, blobs, layout: deps.layout, scanner: deps.scanner, audit, logger: deps.logger }, { retryMs: options.scanRetryMs });
  const introspected = { keys: deps.pasKeys, introspect: (token: string) => deps.introspect(token) };
  const userTokens = accessTokenChecker({
    issuer: options.pasIssuer,
    audience: options.publicUrl,
    clockToleranceSec: options.clockToleranceSec,
    now: options.now,
    keys: deps.pasKeys,
    isActive: async (token) => (await deps.introspect(token)).active,
    cacheMs: options.operatorTokenCacheMs,
  });

  const origin = new URL(options.publicUrl).origin;
  const session = options.session
    ? browserSession(
        {
          issuer: options.session.issuer,
          clientId: options.session.clientId,
          redirectUri: new URL('/oauth2/callback', origin).href,
          scope: 'releases',
          audience: options.publicUrl,
          caPem: options.session.tls.current().caPem,
          clockToleranceSec: options.clockToleranceSec,
        },
        { store: deps.store, logger: deps.logger, audit, tls: options.session.tls },
      )
    : undefined;
  const sessions: PrincipalSource | undefined = session ? async (req) => mapDefined(await session.principal(req), sessionPrincipal) : deps.sessions;

  app.use(principalFrom(userTokens, sessions), sessionWritesSameOrigin(origin));
  if (session) app.use(session.router);
  app.use(assetRoutes());
  // the pages and the file link: a browser without a session goes through the login and back
  const signIn = loginFirst(session?.requireSession);
  const uploads = uploadRoutes({ catalog, layout: deps.layout, authorizer: deps.authorizer, audit, scans, logger: deps.logger }, options);
  uploads.mount(app);
  app.use(
    releaseRoutes({
      catalog,
      blobs,
      authorizer: deps.authorizer,
      audit,
      auditDb: deps.auditDb,
      operatorTokens: operatorTokenChecker({ ...options, publicUrl: options.publicUrl }, introspected),
      signIn,
      now: options.now,
    }),
  );
  // PAS's origin: the sign-out form's redirect to / leads, without a session, to its login (CSP form-action)
  app.use(pageRoutes({ catalog, authorizer: deps.authorizer, audit, pasOrigin: options.session && new URL(options.session.issuer).origin, signIn }));
  app.use(browserRefusals);
  return Object.assign(finishApp(app, deps.logger), {
    close: async () => {
      uploads.close();
      await scans.stop();
    },
    scans,
    sftpDeps: { catalog, blobs, layout: deps.layout, audit, scans, logger: deps.logger },
  });
}

const mapDefined = <T, U>(value: T | undefined, map: (value: T) => U | undefined): U | undefined => (value === undefined ? undefined : map(value));
