import { TokenError, type TokenSettings } from './index.ts';

/*
 * Fixtures of the unit tests next to this file (the package exports only index.ts, so nothing else sees
 * them): the issuer and audience the tokens name, PAS's settings, a feed user, and how a check ended.
 */

export const ISSUER = 'https://pas.test';
export const ACCESS_AUDIENCE = 'https://pac.test';

/** PAS's token settings: the production lifetimes (20 min, 14 d) and 30 s of skew unless a test says otherwise. */
export const testSettings = (overrides: Partial<TokenSettings> = {}): TokenSettings => ({
  issuer: ISSUER,
  accessAudience: ACCESS_AUDIENCE,
  refreshAudience: ISSUER,
  accessTtlSec: 1200,
  refreshTtlSec: 1209600,
  clockToleranceSec: 30,
  ...overrides,
});

/** A full-control user of tenant acme, logged in by the importer for one feed. */
export const subject = { sub: 'u1', tid: 'acme', roles: ['full-control'], scope: 'feed:edr-events', client_id: 'importer' };

export const nowSec = () => Math.floor(Date.now() / 1000);

/** The TokenError code a check ends with, or 'accepted'; any other failure is the test's own and rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    if (err instanceof TokenError) return err.code;
    throw err;
  }
}
