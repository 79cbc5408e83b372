import { idpClient, pasClient } from '@keyway/clients';
import { InvalidGrant, operatorTokenOptions, pasKeysCache, serviceResources, type ServiceInfra } from '@keyway/kit';
import { createScanner } from '@keyway/scan';
import { remoteKeySet } from '@keyway/tokens';
import { createApp, type ReleasesApp } from './app.ts';
import { entitlementAuthorizer, type ReleaseAuthorizer } from './auth/authorizer.ts';
import type { ReleasesConfig } from './config.ts';
import { hostIdentity } from './sftp/host-key.ts';
import { startSftpServer, type SftpServer } from './sftp/server.ts';
import { userCaTrust } from './sftp/trust.ts';
import { storageLayout } from './storage/layout.ts';

/** The releases service from its parsed config: main.ts, the dev launcher and the tests all start it here. */
export async function buildReleases(config: ReleasesConfig, infra: ServiceInfra) {
  const { tls } = infra;
  const resources = serviceResources('releases', config, infra);
  const records = await resources.records();
  const store = await resources.store();
  const auditDb = await resources.auditDatabase();
  const layout = await storageLayout(config.RELEASES_STORAGE_DIR);
  const asService = { tls };
  const pas = pasClient({ ...asService, baseUrl: config.PAS_URL });
  const authorizer = entitlementAuthorizer({ ...asService, baseUrl: config.ENTITLEMENT_URL });
  const app = createApp(
    {
      ...operatorTokenOptions(config),
      maxFileBytes: config.RELEASES_MAX_FILE_BYTES,
      scannableBytes: config.CLAMD_STREAM_MAX_LENGTH,
      scanRetryMs: config.RELEASES_SCAN_RETRY_SEC * 1000,
      uploadExpiryMs: config.RELEASES_UPLOAD_EXPIRY_SEC * 1000,
      // the browser login: PAS is the issuer, this site its public client (sessions in the hot-state store)
      session: { issuer: config.PAS_URL, clientId: config.RELEASES_CLIENT_ID, tls },
    },
    {
      records,
      store,
      auditDb,
      layout,
      scanner: createScanner({
        address: config.CLAMD_ADDRESS,
        timeoutMs: config.CLAMD_TIMEOUT_SEC * 1000,
        commandTimeoutMs: config.CLAMD_COMMAND_TIMEOUT_SEC * 1000,
        maxStreamBytes: config.CLAMD_STREAM_MAX_LENGTH,
      }),
      // mTLS with the releases certificate: the entitlement service answers release rights to this service only
      authorizer,
      pasKeys: remoteKeySet(() => pas.jwks(), pasKeysCache(config)),
      introspect: (token) => pas.introspect(token, 'access_token'),
      logger: infra.logger,
    },
  );
  const sftp = await startSftp(config, app, { pas, authorizer, asService, logger: infra.logger });
  return { app, records, store, sftpPort: () => sftp?.port, close: [async () => sftp?.close(), () => app.close(), ...resources.close] };
}

/** The SFTP front (SFTP_PORT), on the app's catalog, storage, scanner and trail: the same files and rights as HTTPS. */
async function startSftp(
  config: ReleasesConfig,
  app: ReleasesApp,
  deps: { pas: ReturnType<typeof pasClient>; authorizer: ReleaseAuthorizer; asService: { tls: ServiceInfra['tls'] }; logger: ServiceInfra['logger'] },
): Promise<SftpServer | undefined> {
  if (config.SFTP_PORT === 'off') return undefined;
  const { pas, logger } = deps;
  const idp = config.IDP_URL ? idpClient({ ...deps.asService, baseUrl: config.IDP_URL }) : undefined;
  const identity = await hostIdentity({
    keyFile: config.SFTP_HOST_KEY_FILE,
    certificateFile: config.SFTP_HOST_CERTIFICATE_FILE,
    hostnames: config.SFTP_HOST_NAMES?.split(',') ?? [new URL(config.PUBLIC_URL).hostname],
    issue: (line, hostnames) => pas.hostCertificate(line, hostnames),
    logger,
  });
  return startSftpServer(
    { host: config.HOST, port: config.SFTP_PORT, identity },
    {
      ...app.sftpDeps,
      authorizer: deps.authorizer,
      maxFileBytes: config.RELEASES_MAX_FILE_BYTES,
      scannableBytes: config.CLAMD_STREAM_MAX_LENGTH,
      now: () => new Date(),
      reauthorizeMs: config.SFTP_REAUTHORIZE_SEC * 1000,
      clockToleranceSec: config.CLOCK_TOLERANCE_SEC,
      trust: userCaTrust({ fromPas: () => pas.sshCaPublicKey(), file: config.SFTP_TRUSTED_USER_CA_FILE }),
      registeredKey: async (sub, line) => {
        if (!idp) throw new InvalidGrant('keys registered at the IdP are not accepted here (IDP_URL is unset)');
        return idp.verifySshKey(sub, line);
      },
    },
  );
}
