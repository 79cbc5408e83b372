import { entitlementClient, idpClient } from '@keyway/clients';
import { changeEventServiceDeps, serviceKeyring, type ServiceInfra } from '@keyway/kit';
import { createApp, tokenSettings } from './app.ts';
import type { PasConfig } from './config.ts';
import { sharedKeyRing } from './keys/ring.ts';
import { loadSshCertificateAuthority } from './ssh/authority.ts';

/** PAS from its parsed config: main.ts, the dev launcher and the tests all start it here. */
export async function buildPas(config: PasConfig, infra: ServiceInfra) {
  const { logger, tls } = infra;
  // before any connection: a missing or unsafe keyring stops the start at once
  const kek = await serviceKeyring(config, logger);
  const { deps, close } = await changeEventServiceDeps('pas', config, infra);
  const clientOptions = { tls };
  const ring = await sharedKeyRing(deps.records, { kek, reloadMs: config.KEY_RING_RELOAD_SEC * 1000, logger });
  const sshCa = await loadSshCertificateAuthority(deps.records, kek);
  const app = createApp(
    {
      settings: tokenSettings(config),
      revocationMode: config.REVOCATION_MODE,
      signingKeyLeadSec: config.SIGNING_KEY_LEAD_SEC,
      stepUpMaxAgeSec: config.STEP_UP_MAX_AGE_SEC,
      refreshReuseLeewaySec: config.REFRESH_REUSE_LEEWAY_SEC,
      loginLimits: {
        windowSec: config.LOGIN_WINDOW_SEC,
        failuresPerAccountSource: config.LOGIN_FAILURES_PER_ACCOUNT_SOURCE,
        failuresPerAccount: config.LOGIN_FAILURES_PER_ACCOUNT,
        failuresPerSource: config.LOGIN_FAILURES_PER_SOURCE,
        concurrentPerSource: config.LOGIN_CONCURRENT_PER_SOURCE,
        refusalsPerSource: config.REFUSALS_PER_SOURCE,
      },
      refusalWindowSec: config.REFUSAL_WINDOW_SEC,
      browserClients: config.BROWSER_CLIENTS,
      authorizationCodeTtlSec: config.AUTHORIZATION_CODE_TTL_SEC,
      dpop: { requireNonce: config.DPOP_REQUIRE_NONCE, proofWindowSec: config.DPOP_PROOF_WINDOW_SEC, requiredFor: config.DPOP_REQUIRED_FOR },
      ssh: {
        userCertTtlSec: config.SSH_CERT_TTL_SEC,
        hostCertTtlSec: config.SSH_HOST_CERT_TTL_SEC,
        hostNames: config.SSH_HOST_CERT_NAMES?.split(',') ?? (config.RELEASES_AUDIENCE ? [new URL(config.RELEASES_AUDIENCE).hostname] : []),
      },
    },
    {
      ...deps,
      ring,
      sshCa,
      idp: idpClient({ ...clientOptions, baseUrl: config.IDP_URL }),
      entitlement: entitlementClient({ ...clientOptions, baseUrl: config.ENTITLEMENT_URL }),
    },
  );
  return { app, records: deps.records, store: deps.store, close: [() => app.close(), () => ring.close(), ...close] };
}
