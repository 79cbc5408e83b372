export {
  createDevCa,
  createEphemeralPki,
  ensureDevPki,
  issueCert,
  issueServiceCert,
  LEAF_HOURS,
  renewDevPki,
} from './dev-ca.ts';
export type { CertPair, DevCa, DevPki, DevPkiOptions } from './dev-ca.ts';
export { DEFAULT_TRUST_DOMAIN, serviceInTrustDomain, spiffeId, TRUST_DOMAIN } from './spiffe.ts';
export { checkTlsMaterial, pemCertificates, reloadingAgent, staticTls, watchTls } from './reloadable.ts';
export type { ReloadLog, TlsFiles, TlsMaterial, TlsSource, WatchedTls, WatchTlsOptions } from './reloadable.ts';
