import { runService } from '@keyway/kit';
import { buildPac } from './build.ts';
import { PacEnv } from './config.ts';

await runService('pac', PacEnv, buildPac);
