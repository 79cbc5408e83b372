import { describe, expect, it } from 'vitest';
import { OAuthError } from '@keyway/kit';
import { grantedAccess, requestedAccess, scopeOf, withinGrant } from './authorize.ts';

const offered = { releasesAudience: 'https://releases.test' };
const refusal = (scope: string, settings: { releasesAudience?: string } = offered) => {
  try {
    requestedAccess(scope, settings);
  } catch (err) {
    if (err instanceof OAuthError) return { code: err.code, description: err.description };
    throw err;
  }
  return undefined;
};

describe('the releases scope (RFC 6749 §3.3)', () => {
  it('is asked for alone, and round-trips through the scope a pair carries', () => {
    expect(requestedAccess('releases', offered)).toEqual({ kind: 'releases' });
    expect(scopeOf({ kind: 'releases' })).toBe('releases');
    expect(grantedAccess('releases')).toEqual({ kind: 'releases' });
    expect(refusal('releases feed:edr-events')).toEqual({ code: 'invalid_scope', description: 'scope releases is asked for alone' });
    expect(refusal('operator releases')?.code).toBe('invalid_scope');
    expect(refusal('release')).toEqual({ code: 'invalid_scope', description: 'scope must be space-separated feed:<name> values, or operator, or releases' });
  });

  it('is refused with invalid_scope, saying why, where PAS has no RELEASES_AUDIENCE; feeds and operator are not', () => {
    expect(refusal('releases', {})).toEqual({ code: 'invalid_scope', description: 'scope releases is not offered here (PAS has no RELEASES_AUDIENCE)' });
    expect(requestedAccess('feed:edr-events', {})).toEqual({ kind: 'feeds', feeds: ['edr-events'] });
    expect(requestedAccess('operator', {})).toEqual({ kind: 'operator' });
  });

  it('is never traded for feeds or operator at a refresh, nor back', () => {
    const releases = { kind: 'releases' } as const;
    expect(withinGrant(releases, releases)).toBe(true);
    expect(withinGrant({ kind: 'feeds', feeds: [] }, releases)).toBe(false);
    expect(withinGrant(releases, { kind: 'feeds', feeds: ['edr-events'] })).toBe(false);
    expect(withinGrant({ kind: 'operator' }, releases)).toBe(false);
    expect(withinGrant(releases, { kind: 'operator' })).toBe(false);
  });
});
