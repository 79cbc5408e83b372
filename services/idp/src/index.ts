export { createApp, type IdpDeps } from './app.ts';
export { IdpEnv } from './config.ts';
export { operatorProofChecker } from './credentials/internal-changes.ts';
