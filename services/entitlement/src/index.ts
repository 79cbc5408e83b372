export { createApp, type EntitlementDeps, type EntitlementOptions } from './app.ts';
export type { ConsoleDeps } from './console/routes.ts';
export { EntitlementEnv } from './config.ts';
export { evaluate } from './policy/evaluate.ts';
export { crmSignatureHeader, CRM_TOLERANCE_SEC } from './crm/signature.ts';
