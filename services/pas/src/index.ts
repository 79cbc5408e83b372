export { createApp, type PasDeps, type PasOptions } from './app.ts';
export { buildPas } from './build.ts';
export { PasEnv, type PasConfig } from './config.ts';
export { loadKeyRing, sharedKeyRing, type SharedKeyRing } from './keys/ring.ts';
