export { createApp } from './app.ts';
export { buildPas } from './build.ts';
export { PasEnv } from './config.ts';
export { loadKeyRing, sharedKeyRing, type SharedKeyRing } from './keys/ring.ts';
export { loadSshCertificateAuthority } from './ssh/authority.ts';
