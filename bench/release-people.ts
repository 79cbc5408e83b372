import { randomUUID } from 'node:crypto';
import type { Suite } from '@keyway/testkit';

const BENCH_PASSWORD = 'bench-password-0123456789';
export const BENCH_PRODUCT = 'bench-agent';

/**
 * A person of a tenant of their own, for the release benches: a publisher of the bench product, or a
 * downloader of its every version. `token()` logs in again for each phase (an access token lasts 20
 * minutes), once more after a failure, since a kept-alive connection to PAS may be reset after
 * minutes of transfers on a loaded machine.
 */
export async function benchPerson(suite: Suite, role: 'downloader' | 'publisher') {
  const id = `bench-${randomUUID().slice(0, 8)}`;
  const tier = `tier-${id}`;
  await suite.operator.putTier(tier, { name: `Tier ${id}`, feeds: [], products: role === 'downloader' ? [{ product: BENCH_PRODUCT, versions: '>=1.0.0' }] : [] });
  await suite.operator.createTenant({ id, name: `Tenant ${id}`, tier });
  const email = `${role}@${id}.example`;
  const user = await suite.operator.createUser(id, { email, password: BENCH_PASSWORD, roles: [role], products: role === 'publisher' ? [BENCH_PRODUCT] : [] });
  const login = () => suite.pas.password(email, BENCH_PASSWORD, 'releases');
  return { id: user.id, token: async () => (await login().catch(async () => login())).access_token };
}
