export { buildAudit } from './build.ts';
export { AuditEnv, type AuditConfig } from './config.ts';
