import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ApiError, type EntitlementClient, type PasClient } from '@keyway/clients';
import { VENDOR_TENANT } from '@keyway/contracts';

export const DEMO_TENANT = 'demo';
export const DEMO_FEED = 'edr-events';
/** The demo tenant's tier: its feed, and the product its downloaders may download (issue 13). */
const DEMO_TIER = 'demo';
export const DEMO_PRODUCT = { product: 'edr-agent', versions: '>=1.0.0' } as const;

export interface DemoCredentials {
  importer: { email: string; password: string };
  producer: { email: string; password: string };
  /**
   * an operator of the vendor tenant: PAS `grant_type=password` with `scope=operator` and `otp`, a
   * code of its TOTP factor (otpauth_uri, for an authenticator app) or one of its recovery codes
   */
  operator: { email: string; password: string; otpauth_uri?: string; recovery_codes?: string[] };
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
  await operator.createUser(VENDOR_TENANT, { email: credentials.operator.email, password: credentials.operator.password, roles: ['operator'] }).catch(ignoreConflict);
  await operator.putTier(DEMO_TIER, { name: 'Demo tier', feeds: [DEMO_FEED], products: [DEMO_PRODUCT] });
  await operator.createTenant({ id: DEMO_TENANT, name: 'Demo Corp', tier: DEMO_TIER }).catch(ignoreConflict);
  // a demo tenant made before it had a tier joins it (its feed stays: the tier has it too)
  await operator.setTenantTier(DEMO_TENANT, DEMO_TIER);
  await operator.createUser(DEMO_TENANT, { ...credentials.importer, roles: ['full-control'] }).catch(ignoreConflict);
  await operator.createUser(DEMO_TENANT, { ...credentials.producer, roles: ['producer'] }).catch(ignoreConflict);
  await operator.createUser(DEMO_TENANT, { ...credentials.downloader, roles: ['downloader'] }).catch(ignoreConflict);
}

/**
 * The demo operator's TOTP factor (issue 14: the operator scope needs a second factor), enrolled as
 * `keyway mfa enroll` does and kept in the credentials file (0600) beside the password. A database
 * that kept the factor from an earlier run (DATABASE_URL or DATABASE_DIR) keeps it: the file already
 * holds it. Development only: a real operator keeps the factor on a device of their own.
 */
export async function enrolDemoOperator(pas: PasClient, credentials: DemoCredentials, path: string): Promise<DemoCredentials['operator']> {
  const { email, password } = credentials.operator;
  const enrolment = await pas.enrolTotp(email, password).catch((err: unknown) => {
    // enrolled already (the first factor is enrolled on trust only)
    if (err instanceof ApiError && err.code === 'invalid_grant') return undefined;
    throw err;
  });
  if (!enrolment) return credentials.operator;
  const operator = { ...credentials.operator, otpauth_uri: enrolment.otpauth_uri, recovery_codes: enrolment.recovery_codes };
  writeFileSync(path, `${JSON.stringify({ ...credentials, operator }, null, 2)}\n`, { mode: 0o600 });
  return operator;
}
