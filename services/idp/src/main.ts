import { runService } from '@keyway/kit';
import { createStore } from '@keyway/store';
import { createApp } from './app.ts';
import { IdpEnv } from './config.ts';

await runService('idp', IdpEnv, async (config, { logger }) => {
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
  const app = createApp({ store, auditStore, logger }, { verification });
  return { app, close: [() => app.close(), () => auditStore.close(), () => store.close()] };
});
