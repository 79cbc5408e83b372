export { buildIdp } from './build.ts';
export { IdpEnv } from './config.ts';
