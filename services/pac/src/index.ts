export { buildPac } from './build.ts';
export { PacEnv } from './config.ts';
