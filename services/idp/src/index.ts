export { createApp, type IdpApp, type IdpDeps, type IdpOptions } from './app.ts';
export { IdpEnv } from './config.ts';
export { operatorProofChecker } from './credentials/internal-changes.ts';
