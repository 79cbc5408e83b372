export {
  DEV_CA_COMMON_NAME,
  createDevCa,
  createEphemeralPki,
  ensureDevPki,
  issueCert,
} from './dev-ca.ts';
export type { CertPair, DevCa, DevPki, IssueCertOptions } from './dev-ca.ts';
