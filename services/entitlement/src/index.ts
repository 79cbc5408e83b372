export { createApp, type EntitlementDeps } from './app.ts';
export { EntitlementEnv } from './config.ts';
export { evaluate } from './policy/evaluate.ts';
