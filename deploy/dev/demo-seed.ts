import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ApiError, type EntitlementClient } from '@keyway/clients';

export const DEMO_TENANT = 'demo';
export const DEMO_FEED = 'edr-events';

export interface DemoCredentials {
  importer: { email: string; password: string };
  producer: { email: string; password: string };
}

/** Passwords are made once and kept (mode 0600) so a restart against Redis finds the same users. */
export function demoCredentials(path: string): DemoCredentials {
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as DemoCredentials;
  const password = () => randomBytes(18).toString('base64url');
  const credentials = {
    importer: { email: `importer@${DEMO_TENANT}.example`, password: password() },
    producer: { email: `producer@${DEMO_TENANT}.example`, password: password() },
  };
  writeFileSync(path, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600 });
  return credentials;
}

const ignoreConflict = (err: unknown) => {
  if (!(err instanceof ApiError && err.status === 409)) throw err;
};

/** The demo tenant with its feed, a full-control importer user and a producer user; idempotent. */
export async function seedDemo(operator: EntitlementClient, credentials: DemoCredentials): Promise<void> {
  await operator.createTenant({ id: DEMO_TENANT, name: 'Demo Corp', feeds: [DEMO_FEED] }).catch(ignoreConflict);
  await operator.createUser(DEMO_TENANT, { ...credentials.importer, roles: ['full-control'] }).catch(ignoreConflict);
  await operator.createUser(DEMO_TENANT, { ...credentials.producer, roles: ['full-control', 'producer'] }).catch(ignoreConflict);
}
