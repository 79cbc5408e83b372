export {
  createDevCa,
  createEphemeralPki,
  ensureDevPki,
  issueCert,
  issueServiceCert,
  renewDevPki,
} from './dev-ca.ts';
export type { CertPair, DevCa, DevPki } from './dev-ca.ts';
export { DEFAULT_TRUST_DOMAIN, serviceInTrustDomain, spiffeId, TRUST_DOMAIN } from './spiffe.ts';
export { reloadingAgent, staticTls, watchTls } from './reloadable.ts';
export type { TlsFiles, TlsMaterial, TlsSource, WatchedTls } from './reloadable.ts';
