import { pasClient } from '@keyway/clients';
import { pasKeysCache, serviceKeyring, serviceResources, type ServiceInfra } from '@keyway/kit';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import type { IdpConfig } from './config.ts';
import { operatorProofChecker } from './credentials/internal-changes.ts';

/** The IdP from its parsed config: main.ts, the dev launcher and the tests all start it here. */
export async function buildIdp(config: IdpConfig, infra: ServiceInfra) {
  const { logger, tls } = infra;
  const resources = serviceResources('idp', config, infra);
  const records = await resources.records();
  const db = await resources.database();
  const store = await resources.store();
  const auditDb = await resources.auditDatabase();
  const kek = await serviceKeyring(config, logger);
  const verification = {
    hashConcurrency: config.SCRYPT_CONCURRENCY,
    hashQueue: config.SCRYPT_QUEUE,
    hashMaxWaitMs: config.SCRYPT_MAX_WAIT_MS,
    failuresPerAccount: config.VERIFY_FAILURES_PER_ACCOUNT,
    windowSec: config.VERIFY_WINDOW_SEC,
  };
  const { PAS_URL, ENTITLEMENT_URL } = config;
  const pas = PAS_URL ? pasClient({ baseUrl: PAS_URL, tls, anonymous: true }) : undefined;
  const operatorProof =
    PAS_URL && ENTITLEMENT_URL && pas
      ? operatorProofChecker({ pasIssuer: PAS_URL, entitlementUrl: ENTITLEMENT_URL, clockToleranceSec: config.CLOCK_TOLERANCE_SEC, keys: remoteKeySet(() => pas.jwks(), pasKeysCache(config)) })
      : undefined;
  if (!operatorProof) logger.warn('PAS_URL and ENTITLEMENT_URL unset: operator accounts’ credentials cannot be replaced');
  // WebAuthn's relying party is where the login page runs: PAS's public origin, its host the RP ID
  const passkeyOrigin = config.PASSKEY_ORIGIN ?? PAS_URL;
  const relyingParty = passkeyOrigin ? { origin: new URL(passkeyOrigin).origin, rpId: new URL(passkeyOrigin).hostname, name: config.PASSKEY_RP_NAME } : undefined;
  if (!relyingParty) logger.warn('PASSKEY_ORIGIN and PAS_URL unset: passkeys are not offered');
  const app = createApp({ records, db, kek, store, auditDb, operatorProof, operatorTenant: config.OPERATOR_TENANT, logger }, { verification, ...(relyingParty && { relyingParty }) });
  return { app, records, store, close: [() => app.close(), ...resources.close] };
}
