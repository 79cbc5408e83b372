export { buildPac } from './build.ts';
export { PacEnv } from './config.ts';
export { tenantKeys } from './keys/tenant-keys.ts';
