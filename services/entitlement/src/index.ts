export { buildEntitlement } from './build.ts';
export { EntitlementEnv } from './config.ts';
export { crmSignatureHeader } from './crm/signature.ts';
