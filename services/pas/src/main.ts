import { entitlementClient, idpClient } from '@keyway/clients';
import { runService } from '@keyway/kit';
import { createStore } from '@keyway/store';
import { createApp, tokenSettings } from './app.ts';
import { PasEnv } from './config.ts';
import { loadKeyRing } from './keys/ring.ts';

await runService('pas', PasEnv, async (config, { logger, tls }) => {
  const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:pas:` });
  const clientOptions = { caPem: tls.caPem, clientCert: tls };
  const app = createApp(
    { settings: tokenSettings(config) },
    {
      store,
      ring: await loadKeyRing(store),
      idp: idpClient({ ...clientOptions, baseUrl: config.IDP_URL }),
      entitlement: entitlementClient({ ...clientOptions, baseUrl: config.ENTITLEMENT_URL }),
      logger,
    },
  );
  return { app, close: [() => store.close()] };
});
