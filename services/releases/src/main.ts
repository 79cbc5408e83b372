import { runService } from '@keyway/kit';
import { buildReleases } from './build.ts';
import { ReleasesEnv } from './config.ts';

await runService('releases', ReleasesEnv, buildReleases);
