import { pasClient } from '@keyway/clients';
import { runService } from '@keyway/kit';
import { createStore } from '@keyway/store';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import { IdpEnv } from './config.ts';
import { operatorProofChecker } from './credentials/internal-changes.ts';

await runService('idp', IdpEnv, async (config, { logger, tls }) => {
  const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:idp:` });
  // One audit keyspace for every service (packages/audit layout), so the trail is queried across services.
  const auditStore = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:audit:` });
  const verification = {
    hashConcurrency: config.SCRYPT_CONCURRENCY,
    hashQueue: config.SCRYPT_QUEUE,
    hashMaxWaitMs: config.SCRYPT_MAX_WAIT_MS,
    failuresPerAccount: config.VERIFY_FAILURES_PER_ACCOUNT,
    windowSec: config.VERIFY_WINDOW_SEC,
  };
  const { PAS_URL, ENTITLEMENT_URL } = config;
  const pas = PAS_URL ? pasClient({ baseUrl: PAS_URL, caPem: tls.caPem }) : undefined;
  const operatorProof =
    PAS_URL && ENTITLEMENT_URL && pas
      ? operatorProofChecker({ pasIssuer: PAS_URL, entitlementUrl: ENTITLEMENT_URL, clockToleranceSec: config.CLOCK_TOLERANCE_SEC, keys: remoteKeySet(() => pas.jwks()) })
      : undefined;
  if (!operatorProof) logger.warn('PAS_URL and ENTITLEMENT_URL unset: operator accounts’ credentials cannot be replaced');
  const app = createApp({ store, auditStore, operatorProof, operatorTenant: config.OPERATOR_TENANT, logger }, { verification });
  return { app, close: [() => app.close(), () => auditStore.close(), () => store.close()] };
});
