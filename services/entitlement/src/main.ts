import { idpClient } from '@keyway/clients';
import { runService } from '@keyway/kit';
import { createStore } from '@keyway/store';
import { createApp } from './app.ts';
import { EntitlementEnv } from './config.ts';

await runService('entitlement', EntitlementEnv, async (config, { logger, tls }) => {
  const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:entitlement:` });
  const idp = idpClient({ baseUrl: config.IDP_URL, caPem: tls.caPem, clientCert: tls });
  return { app: createApp({ store, idp, logger }), close: [() => store.close()] };
});
