import { randomUUID } from 'node:crypto';
import { ApiError, entitlementClient, pacClient, pasClient } from '@keyway/clients';
import { VENDOR_TENANT } from '@keyway/contracts';
import type { Suite } from '@keyway/testkit';
import { PASSWORD } from '../helpers.ts';

const ignoreConflict = (err: unknown) => {
  if (!(err instanceof ApiError && err.status === 409)) throw err;
};

/** A fresh operator in the vendor tenant (made with the operator certificate, as the launcher does). */
export async function provisionOperator(suite: Suite) {
  await suite.operator.createTenant({ id: VENDOR_TENANT, name: 'Keyway operators' }).catch(ignoreConflict);
  const email = `operator-${randomUUID().slice(0, 8)}@${VENDOR_TENANT}.example`;
  const user = await suite.operator.createUser(VENDOR_TENANT, { email, password: PASSWORD, roles: ['operator'] });
  return { email, user };
}

/** Logs the operator in (`scope=operator`) and answers clients for the three admin APIs that send the access token. */
export async function operatorSession(suite: Suite, email: string) {
  const tokens = await suite.pas.password(email, PASSWORD, 'operator');
  const caPem = suite.pki.ca.certPem;
  const accessToken = () => tokens.access_token;
  return {
    tokens,
    entitlement: entitlementClient({ baseUrl: suite.urls.entitlement, caPem, accessToken }),
    pas: pasClient({ baseUrl: suite.urls.pas, caPem, accessToken }),
    pac: pacClient({ baseUrl: suite.urls.pac, caPem, accessToken }),
  };
}

/** Polls `probe` until it answers `status`; how long that took, or Infinity past the budget. */
export async function timeUntil(probe: () => Promise<number>, status: number, budgetMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if ((await probe()) === status) return Date.now() - started;
    if (Date.now() - started > budgetMs) return Infinity;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
