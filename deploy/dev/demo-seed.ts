import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ApiError, type EntitlementClient } from '@keyway/clients';
import { VENDOR_TENANT } from '@keyway/contracts';

export const DEMO_TENANT = 'demo';
export const DEMO_FEED = 'edr-events';
/** The demo tenant's tier: its feed, and the product its downloaders may download (issue 13). */
const DEMO_TIER = 'demo';
export const DEMO_PRODUCT = { product: 'edr-agent', versions: '>=1.0.0' } as const;

export interface DemoCredentials {
  importer: { email: string; password: string };
  producer: { email: string; password: string };
  /** an operator of the vendor tenant: PAS `grant_type=password` with `scope=operator` */
  operator: { email: string; password: string };
  /** a downloader of the demo tenant: the releases site's browser login (scope=releases) */
  downloader: { email: string; password: string };
}

/**
 * Passwords are made once and kept (mode 0600) so a restart against Redis finds the same users; a
 * file written before a user existed gains it.
 */
export function demoCredentials(path: string): DemoCredentials {
  const kept = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Partial<DemoCredentials>) : {};
  const password = () => randomBytes(18).toString('base64url');
  const credentials: DemoCredentials = {
    importer: kept.importer ?? { email: `importer@${DEMO_TENANT}.example`, password: password() },
    producer: kept.producer ?? { email: `producer@${DEMO_TENANT}.example`, password: password() },
    operator: kept.operator ?? { email: `operator@${VENDOR_TENANT}.example`, password: password() },
    downloader: kept.downloader ?? { email: `downloader@${DEMO_TENANT}.example`, password: password() },
  };
  if (!kept.importer || !kept.producer || !kept.operator || !kept.downloader) writeFileSync(path, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  return credentials;
}

const ignoreConflict = (err: unknown) => {
  if (!(err instanceof ApiError && err.status === 409)) throw err;
};

/**
 * The demo tenant on the demo tier (its feed and the product edr-agent, versions >=1.0.0), a
 * full-control importer user, a producer user and a downloader user, and the vendor tenant with an
 * operator user (no feeds: operators use the admin APIs); idempotent.
 */
export async function seedDemo(operator: EntitlementClient, credentials: DemoCredentials): Promise<void> {
  await operator.createTenant({ id: VENDOR_TENANT, name: 'Keyway operators' }).catch(ignoreConflict);
  await operator.createUser(VENDOR_TENANT, { ...credentials.operator, roles: ['operator'] }).catch(ignoreConflict);
  await operator.putTier(DEMO_TIER, { name: 'Demo tier', feeds: [DEMO_FEED], products: [DEMO_PRODUCT] });
  await operator.createTenant({ id: DEMO_TENANT, name: 'Demo Corp', tier: DEMO_TIER }).catch(ignoreConflict);
  // a demo tenant made before it had a tier joins it (its feed stays: the tier has it too)
  await operator.setTenantTier(DEMO_TENANT, DEMO_TIER);
  await operator.createUser(DEMO_TENANT, { ...credentials.importer, roles: ['full-control'] }).catch(ignoreConflict);
  await operator.createUser(DEMO_TENANT, { ...credentials.producer, roles: ['producer'] }).catch(ignoreConflict);
  await operator.createUser(DEMO_TENANT, { ...credentials.downloader, roles: ['downloader'] }).catch(ignoreConflict);
}
