import { runService } from '@keyway/kit';
import { createStore } from '@keyway/store';
import { createApp } from './app.ts';
import { IdpEnv } from './config.ts';

await runService('idp', IdpEnv, async (config, { logger }) => {
  const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:idp:` });
  return { app: createApp({ store, logger }), close: [() => store.close()] };
});
