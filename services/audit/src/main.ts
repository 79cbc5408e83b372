import { runService } from '@keyway/kit';
import { buildAudit } from './build.ts';
import { AuditEnv } from './config.ts';

await runService('audit', AuditEnv, buildAudit);
