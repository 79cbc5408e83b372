export { buildIdp } from './build.ts';
export { IdpEnv, type IdpConfig } from './config.ts';
