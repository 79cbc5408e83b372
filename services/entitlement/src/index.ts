export { buildEntitlement } from './build.ts';
export { EntitlementEnv, type EntitlementConfig } from './config.ts';
export { evaluate } from './policy/evaluate.ts';
export { crmSignatureHeader, CRM_TOLERANCE_SEC } from './crm/signature.ts';
