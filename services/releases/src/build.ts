import { pasClient } from '@keyway/clients';
import { operatorTokenOptions, pasKeysCache, serviceResources, type ServiceInfra } from '@keyway/kit';
import { createScanner } from '@keyway/scan';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import { entitlementAuthorizer } from './auth/authorizer.ts';
import type { ReleasesConfig } from './config.ts';
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
      authorizer: entitlementAuthorizer({ ...asService, baseUrl: config.ENTITLEMENT_URL }),
      pasKeys: remoteKeySet(() => pas.jwks(), pasKeysCache(config)),
      introspect: (token) => pas.introspect(token, 'access_token'),
      logger: infra.logger,
    },
  );
  return { app, records, store, close: [() => app.close(), ...resources.close] };
}
