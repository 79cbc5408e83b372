import { randomUUID } from 'node:crypto';
import { ApiError, entitlementClient, pacClient, pasClient } from '@keyway/clients';
import { type TotpEnrolment, VENDOR_TENANT } from '@keyway/contracts';
import { secretOfOtpauthUri, TOTP_PERIOD_SEC, totpAt, totpStep } from '@keyway/kit';
import type { Suite } from '@keyway/testkit';
import { PASSWORD } from '../helpers.ts';

const ignoreConflict = (err: unknown) => {
  if (!(err instanceof ApiError && err.status === 409)) throw err;
};

/**
 * The operator's authenticator app, for tests: the IdP accepts each 30-second step once per account
 * (and ±1 step of now), so codes are handed out in increasing steps, never one step twice: up to
 * three at once (the previous, current and next step), then the recovery codes, then the next step
 * when it comes. Logins of one operator in a test therefore never collide and never wait long.
 */
export class Authenticator {
  private lastStep = 0;
  private readonly recovery: string[];
  readonly secret: Buffer;
  constructor(enrolment: TotpEnrolment) {
    this.secret = secretOfOtpauthUri(enrolment.otpauth_uri);
    this.recovery = [...enrolment.recovery_codes];
  }

  /** a TOTP code never handed out before (or a recovery code when the steps around now are spent) */
  async code(): Promise<string> {
    for (;;) {
      const nowMs = Date.now();
      const now = totpStep(nowMs);
      // the previous step only while this one has seconds left: the code must still match when it arrives
      const leftMs = (now + 1) * TOTP_PERIOD_SEC * 1000 - nowMs;
      const first = Math.max(this.lastStep + 1, leftMs > 5000 ? now - 1 : now);
      if (first <= now + 1) {
        this.lastStep = first;
        return totpAt(this.secret, first);
      }
      const recovery = this.recovery.shift();
      if (recovery) return recovery;
      await new Promise((resolve) => setTimeout(resolve, leftMs + 50));
    }
  }

  /** the recovery codes not handed out yet (for tests of recovery codes) */
  takeRecoveryCode(): string {
    const code = this.recovery.shift();
    if (!code) throw new Error('no recovery code left');
    return code;
  }
}

const authenticators = new Map<string, Authenticator>();

/** The authenticator of an operator provisionOperator made. */
export function authenticatorOf(email: string): Authenticator {
  const authenticator = authenticators.get(email);
  if (!authenticator) throw new Error(`${email} has no enrolled authenticator (provisionOperator enrols one)`);
  return authenticator;
}

/** A fresh code of an operator provisionOperator made. */
export const operatorOtp = (email: string): Promise<string> => authenticatorOf(email).code();

/**
 * A fresh operator in the vendor tenant (made with the operator certificate, as the launcher does),
 * with a TOTP factor enrolled at PAS as `keyway mfa enroll` does (issue 14: the operator scope needs it).
 */
export async function provisionOperator(suite: Pick<Suite, 'operator' | 'pas'>) {
  await suite.operator.createTenant({ id: VENDOR_TENANT, name: 'Keyway operators' }).catch(ignoreConflict);
  const email = `operator-${randomUUID().slice(0, 8)}@${VENDOR_TENANT}.example`;
  const user = await suite.operator.createUser(VENDOR_TENANT, { email, password: PASSWORD, roles: ['operator'] });
  const enrolment = await suite.pas.enrolTotp(email, PASSWORD);
  const authenticator = new Authenticator(enrolment);
  authenticators.set(email, authenticator);
  return { email, user, authenticator };
}

/** An operator login (`scope=operator`, password and a fresh code) at PAS. */
export async function operatorLogin(suite: Pick<Suite, 'pas'>, email: string) {
  return suite.pas.password(email, PASSWORD, 'operator', undefined, await operatorOtp(email));
}

/** Logs the operator in (`scope=operator`) and answers clients for the three admin APIs that send the access token. */
export async function operatorSession(suite: Suite, email: string) {
  const tokens = await operatorLogin(suite, email);
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
