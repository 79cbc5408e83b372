import { isIP } from 'node:net';
import type { Request } from 'express';
import { callerService, tooManyRequests, windowLimiter, type CounterStore, type LimitState, type WindowLimiter } from '@keyway/kit';

/** How hard logins are throttled (config.ts: LOGIN_*). */
export interface LoginLimits {
  /** failed logins of one account from one source per window; a success resets them */
  failuresPerAccountSource: number;
  /** failed logins of one account from every source together per window (the looser ceiling) */
  failuresPerAccount: number;
  /** failed logins from one source, whatever the accounts, per window (password spraying) */
  failuresPerSource: number;
  /** refusals without an authenticated party (garbage tokens, malformed or throttled requests) from one source per window */
  refusalsPerSource: number;
  /** login requests one source may have in flight at once on this instance */
  concurrentPerSource: number;
  windowSec: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  failuresPerAccountSource: 5,
  failuresPerAccount: 20,
  failuresPerSource: 30,
  refusalsPerSource: 120,
  concurrentPerSource: 4,
  windowSec: 60,
};

/**
 * The header the entitlement service's console sets to the operator's own address when it signs them
 * in through the password grant: without it every console sign-in would come from the console's
 * address and one attacker could throttle every operator. Believed only from a caller holding the
 * entitlement service's certificate (mutual TLS), never from anyone else.
 */
const CLIENT_ADDRESS_HEADER = 'x-keyway-client-address';

/** The source a request is throttled by: the peer address, or the console's operator behind it. */
export function sourceOf(req: Request): string {
  const forwarded = req.get(CLIENT_ADDRESS_HEADER);
  if (forwarded && isIP(forwarded) && callerService(req) === 'entitlement') return forwarded;
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

/** A throttled attempt: the rule that refused it and whether it is the window's first refusal (the one recorded). */
export interface Throttled {
  rule: string;
  state: LimitState;
}

/**
 * Login throttling (issue 9, OWASP Authentication Cheat Sheet "Account lockout"), in the shared store
 * so every PAS instance counts together. Three fixed-window counters of FAILED logins, checked before
 * a password or assertion is sent to the IdP and counted after it refused:
 *
 * - account + source (tight): a guesser from one address gets `failuresPerAccountSource` tries per
 *   window; the real user, from another address, is not affected, and a success resets the counter;
 * - account alone (looser): bounds guessing spread over many addresses; an attacker who fills it
 *   blocks the account for the rest of one window, never longer;
 * - source alone: bounds one address spraying many accounts.
 *
 * Plus a per-instance cap on one source's logins in flight, so a burst of concurrent attempts (which
 * all pass the checks before the first failure is counted) cannot fill the IdP's verification queue.
 */
export function loginThrottle(store: CounterStore, limits: LoginLimits) {
  const windowMs = limits.windowSec * 1000;
  const rules: Array<[WindowLimiter, (account: string | undefined, source: string) => string | undefined]> = [
    [windowLimiter(store, { name: 'login-account-source', points: limits.failuresPerAccountSource, windowMs }), (a, s) => (a === undefined ? undefined : `${a}|${s}`)],
    [windowLimiter(store, { name: 'login-account', points: limits.failuresPerAccount, windowMs }), (a) => a],
    [windowLimiter(store, { name: 'login-source', points: limits.failuresPerSource, windowMs }), (_a, s) => s],
  ];
  const [accountSource] = rules[0] ?? [];
  const inFlight = new Map<string, number>();

  return {
    /** The first rule that refuses this attempt, if any. */
    async check(account: string | undefined, source: string): Promise<Throttled | undefined> {
      for (const [limiter, keyOf] of rules) {
        const key = keyOf(account, source);
        if (key === undefined) continue;
        const state = await limiter.check(key);
        if (!state.allowed) return { rule: limiter.rule.name, state };
      }
      return undefined;
    },
    async failed(account: string | undefined, source: string): Promise<void> {
      for (const [limiter, keyOf] of rules) {
        const key = keyOf(account, source);
        if (key !== undefined) await limiter.hit(key);
      }
    },
    /** a success ends the run of failures from that source (the account-wide ceiling keeps counting) */
    async succeeded(account: string | undefined, source: string): Promise<void> {
      if (account !== undefined && accountSource) await accountSource.reset(`${account}|${source}`);
    },
    /** Runs a login attempt within the source's in-flight cap; beyond it, 429 at once. */
    async inFlight<T>(source: string, attempt: () => Promise<T>): Promise<T> {
      const current = inFlight.get(source) ?? 0;
      if (current >= limits.concurrentPerSource) {
        throw tooManyRequests({ retryAfterSec: 1 }, `${current} logins of ${source} in flight`);
      }
      inFlight.set(source, current + 1);
      try {
        return await attempt();
      } finally {
        const left = (inFlight.get(source) ?? 1) - 1;
        if (left > 0) inFlight.set(source, left);
        else inFlight.delete(source);
      }
    },
  };
}
export type LoginThrottle = ReturnType<typeof loginThrottle>;
