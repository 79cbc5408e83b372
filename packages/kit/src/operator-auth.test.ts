import type { Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { ACR_MULTI_FACTOR, ACR_SINGLE_FACTOR } from '@keyway/contracts';
import type { OAuthError } from './errors.ts';
import { silentLogger } from './logger.ts';
import { requireOperator, requireRecentAuthentication, type RecentAuthentication } from './operator-auth.ts';

const NOW = 1_800_000_000_000;
const claims = { sub: 'op-1', tid: 'vendor', roles: ['operator'], scope: 'operator', jti: 'j-1' };

/** runs requireOperator with a bearer token whose claims are `extra`: what it passes on to next() */
async function stepUp(extra: { acr?: string; auth_time?: number }, options: Omit<RecentAuthentication, 'now'> = { maxAgeSec: 300 }) {
  const chain = [requireOperator({ verify: async () => ({ active: true, claims: { ...claims, ...extra } }) }), requireRecentAuthentication({ ...options, now: () => NOW })];
  const req = { get: (name: string) => (name === 'authorization' ? 'Bearer abc.def.ghi' : undefined), socket: {}, log: silentLogger } as unknown as Request;
  let passed: unknown = 'not called';
  for (const middleware of chain) {
    passed = 'not called';
    await middleware(req, {} as Response, (err?: unknown) => {
      passed = err;
    });
    if (passed !== undefined) break;
  }
  return { passed: passed as OAuthError | undefined, req };
}

describe('requireOperator, then requireRecentAuthentication (RFC 9470 step-up)', () => {
  const nowSec = NOW / 1000;

  it('passes a token with acr mfa and an auth_time within max age', async () => {
    const { passed, req } = await stepUp({ acr: ACR_MULTI_FACTOR, auth_time: nowSec - 300 });
    expect(passed).toBeUndefined();
    expect(req.operator).toMatchObject({ via: 'bearer', sub: 'op-1', acr: ACR_MULTI_FACTOR, authTime: nowSec - 300 });
  });

  it('refuses a login older than max age: 401 insufficient_user_authentication with acr_values and max_age', async () => {
    const { passed } = await stepUp({ acr: ACR_MULTI_FACTOR, auth_time: nowSec - 301 });
    expect(passed).toMatchObject({ status: 401, code: 'insufficient_user_authentication' });
    expect(passed?.headers['WWW-Authenticate']).toBe(
      `Bearer realm="keyway", error="insufficient_user_authentication", error_description="this action requires a login with a second factor within the last 300 seconds", acr_values="${ACR_MULTI_FACTOR}", max_age=300`,
    );
  });

  it('refuses a single-factor token, and one from before acr existed, whatever its age; records the reason', async () => {
    const reasons: string[] = [];
    const onRefused = async (_req: Request, refusal: { reason: string }) => void reasons.push(refusal.reason);
    for (const extra of [{ acr: ACR_SINGLE_FACTOR, auth_time: nowSec }, {}]) {
      const { passed } = await stepUp(extra, { maxAgeSec: 300, onRefused });
      expect(passed).toMatchObject({ status: 401, code: 'insufficient_user_authentication', description: 'this action requires a login with a second factor' });
    }
    const { passed } = await stepUp({ acr: ACR_MULTI_FACTOR }, { maxAgeSec: 300, onRefused });
    expect(passed?.code).toBe('insufficient_user_authentication');
    expect(reasons).toEqual(['acr', 'acr', 'max_age']);
  });

  it('refuses even when the trail does not take the refusal', async () => {
    const { passed } = await stepUp({ acr: ACR_SINGLE_FACTOR }, { maxAgeSec: 300, onRefused: async () => Promise.reject(new Error('trail down')) });
    expect(passed?.code).toBe('insufficient_user_authentication');
  });
});
