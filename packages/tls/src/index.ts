export {
  createDevCa,
  createEphemeralPki,
  ensureDevPki,
  issueCert,
} from './dev-ca.ts';
export type { CertPair, DevPki } from './dev-ca.ts';
