export { buildReleases } from './build.ts';
export { ReleasesEnv } from './config.ts';
