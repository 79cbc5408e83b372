export { buildPac } from './build.ts';
export { PacEnv, type PacConfig } from './config.ts';
