export { createApp, tokenSettings, type PasDeps, type PasOptions } from './app.ts';
export { PasEnv } from './config.ts';
export { DEFAULT_KEY_RING_RELOAD_SEC, loadKeyRing, sharedKeyRing, type SharedKeyRing } from './keys/ring.ts';
