import { entitlementClient, pasClient } from '@keyway/clients';
import { changeEventServiceDeps, operatorTokenOptions, pasKeysCache, serviceKeyring, type ServiceInfra } from '@keyway/kit';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import type { PacConfig } from './config.ts';
import { entitlementHolderCheck } from './sas/holder-check.ts';

/** PAC from its parsed config: main.ts, the dev launcher and the tests all start it here. */
export async function buildPac(config: PacConfig, infra: ServiceInfra) {
  const { tls } = infra;
  // before any connection: a missing or unsafe keyring stops the start at once
  const kek = await serviceKeyring(config, infra.logger);
  const { deps, close } = await changeEventServiceDeps('pac', config, infra);
  const pas = pasClient({ baseUrl: config.PAS_URL, tls });
  // mTLS with PAC's certificate: the entitlement service answers authorization questions to PAS and PAC only
  const entitlement = entitlementClient({ baseUrl: config.ENTITLEMENT_URL, tls });
  const app = createApp(
    {
      ...operatorTokenOptions(config),
      topicBaseUrl: config.TOPIC_BASE_URL,
      stepUpMaxAgeSec: config.STEP_UP_MAX_AGE_SEC,
      sasTtlSec: config.SAS_TTL_SEC,
      revocationMode: config.REVOCATION_MODE,
      refusalsPerSource: config.REFUSALS_PER_SOURCE,
      refusalWindowSec: config.REFUSAL_WINDOW_SEC,
    },
    {
      ...deps,
      kek,
      pasKeys: remoteKeySet(() => pas.jwks(), pasKeysCache(config)),
      introspect: (token, hint) => pas.introspect(token, hint),
      holders: entitlementHolderCheck(entitlement),
    },
  );
  return { app, records: deps.records, store: deps.store, close: [() => app.close(), ...close] };
}
