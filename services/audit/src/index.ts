export { buildAudit } from './build.ts';
export { AuditEnv } from './config.ts';
