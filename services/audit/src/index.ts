export { createApp, DEFAULT_AUDIT_EXPORT_INTERVAL_MS, type AuditApp, type AuditDeps, type AuditOptions } from './app.ts';
export { buildAudit, type AuditBuildContext } from './build.ts';
export { AuditEnv } from './config.ts';
