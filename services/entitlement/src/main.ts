import { runService } from '@keyway/kit';
import { buildEntitlement } from './build.ts';
import { EntitlementEnv } from './config.ts';

await runService('entitlement', EntitlementEnv, buildEntitlement);
