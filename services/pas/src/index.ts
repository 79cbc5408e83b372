export { createApp, tokenSettings, type PasDeps, type PasOptions } from './app.ts';
export { PasEnv } from './config.ts';
export { loadKeyRing } from './keys/ring.ts';
