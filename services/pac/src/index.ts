export { createApp, type PacDeps, type PacOptions } from './app.ts';
export { PacEnv } from './config.ts';
