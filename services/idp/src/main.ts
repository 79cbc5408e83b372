import { runService } from '@keyway/kit';
import { buildIdp } from './build.ts';
import { IdpEnv } from './config.ts';

await runService('idp', IdpEnv, buildIdp);
