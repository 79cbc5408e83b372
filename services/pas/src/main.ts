import { runService } from '@keyway/kit';
import { buildPas } from './build.ts';
import { PasEnv } from './config.ts';

await runService('pas', PasEnv, buildPas);
