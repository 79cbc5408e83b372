import { refusalAggregator, type AuditLog } from '@keyway/audit';
import { boundedConcurrency, TemporarilyUnavailable, tooManyRequests, windowLimiter, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';

/** The IdP's own bounds on credential checks (config.ts: SCRYPT_*, VERIFY_*). */
export interface VerificationLimits {
  /** scrypt verifications running at once (each takes 32 MiB and a libuv thread for tens of ms) */
  hashConcurrency: number;
  /** verifications waiting for a slot; beyond, 503 at once */
  hashQueue: number;
  /** the longest a verification waits for a slot before 503 */
  hashMaxWaitMs: number;
  /** failed verifications of one account (email, or client for assertions, or user for SSH keys) per window, from every caller together */
  failuresPerAccount: number;
  windowSec: number;
}

export const DEFAULT_VERIFICATION_LIMITS: VerificationLimits = { hashConcurrency: 2, hashQueue: 8, hashMaxWaitMs: 2000, failuresPerAccount: 30, windowSec: 60 };

/**
 * The IdP's second line behind PAS's login throttle (issue 9): a stolen PAS certificate, or a PAS
 * whose throttle is misconfigured, still cannot guess faster than `failuresPerAccount` per account and
 * window, and every failed verification is on record: counted per account and window and written as
 * one credentials.verification_failed event each (the count, and wrong password or unknown account as
 * reasons), never one event per guess.
 *
 * scrypt is bounded: `hashConcurrency` run, `hashQueue` wait, anything beyond answers 503
 * temporarily_unavailable with Retry-After at once, so a flood of logins cannot take every libuv
 * thread (and with them the file system and DNS work of everything in the process).
 */
export function verificationGuard(store: Store, audit: AuditLog, logger: Logger, limits: VerificationLimits) {
  const failures = windowLimiter(store, { name: 'verify-failures', points: limits.failuresPerAccount, windowMs: limits.windowSec * 1000 });
  const failed = refusalAggregator({ log: audit, store, logger, action: 'credentials.verification_failed', keyField: 'username', windowMs: limits.windowSec * 1000 });
  const hashing = boundedConcurrency({
    concurrency: limits.hashConcurrency,
    queue: limits.hashQueue,
    maxWaitMs: limits.hashMaxWaitMs,
    onFull: () => new TemporarilyUnavailable('too many credentials are being checked; retry later', 'verification queue full', { 'Retry-After': '1' }),
  });
  return {
    hashing,
    /** 429 when the account has failed too often in the window (the check itself is counted, not recorded) */
    async admit(account: string): Promise<void> {
      const state = await failures.check(account);
      if (state.allowed) return;
      await failed.count(account, 'too_many_requests');
      throw tooManyRequests(state, `${state.count} failed verifications of the account in the window`);
    },
    async failed(
      account: string,
      reason: 'wrong_password' | 'unknown_account' | 'no_password' | 'invalid_assertion' | 'invalid_passkey' | 'no_second_factor' | 'wrong_code' | 'code_reused' | 'unregistered_ssh_key',
    ): Promise<void> {
      await failures.hit(account);
      await failed.count(account, reason);
    },
    close: () => failed.close(),
  };
}
export type VerificationGuard = ReturnType<typeof verificationGuard>;
