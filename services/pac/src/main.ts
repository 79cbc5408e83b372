import { pasClient } from '@keyway/clients';
import { runService } from '@keyway/kit';
import { createStore } from '@keyway/store';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import { PacEnv } from './config.ts';

await runService('pac', PacEnv, async (config, { logger, tls }) => {
  const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:pac:` });
  const pas = pasClient({ baseUrl: config.PAS_URL, caPem: tls.caPem });
  const app = createApp(
    { pasIssuer: config.PAS_URL, topicBaseUrl: config.TOPIC_BASE_URL, sasTtlSec: config.SAS_TTL_SEC, clockToleranceSec: config.CLOCK_TOLERANCE_SEC },
    { store, pasKeys: remoteKeySet(() => pas.jwks()), logger },
  );
  return { app, close: [() => store.close()] };
});
