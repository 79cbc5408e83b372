import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '@keyway/kit';
import { PasEnv } from '../config.ts';
import { BrowserClients, scopeFor } from './clients.ts';

const releases = { client_id: 'keyway-releases', redirect_uris: ['https://releases.example/oauth2/callback'], scope: 'feed:edr-events feed:dns-logs' };

/** PAS's config in development with only BROWSER_CLIENTS varying. */
const config = (browserClients: string | undefined, releasesAudience?: string) =>
  parseConfig(PasEnv, {
    RELEASES_AUDIENCE: releasesAudience,
    KEYWAY_ENV: 'development',
    TLS_CERT_FILE: 'pas.crt',
    TLS_KEY_FILE: 'pas.key',
    TLS_CA_FILE: 'ca.crt',
    PUBLIC_URL: 'https://pas.example',
    ACCESS_AUDIENCE: 'https://pac.example',
    IDP_URL: 'https://idp.example',
    ENTITLEMENT_URL: 'https://entitlement.example',
    BROWSER_CLIENTS: browserClients,
  });

describe('BROWSER_CLIENTS: registered browser clients', () => {
  it('parses a JSON array of registrations; unset is none', () => {
    expect(config(JSON.stringify([releases])).BROWSER_CLIENTS).toEqual([releases]);
    expect(config(undefined).BROWSER_CLIENTS).toEqual([]);
  });

  it('refuses at start what is not JSON, or a registration PAS could not hold a browser to, naming the key', () => {
    const refused = (value: string) => {
      try {
        config(value);
      } catch (err) {
        if (err instanceof ConfigError) return err.issues.join('; ');
      }
      return 'accepted';
    };
    expect(refused('[{')).toMatch(/^BROWSER_CLIENTS: must be JSON/);
    expect(refused(JSON.stringify([{ ...releases, redirect_uris: ['http://releases.example/cb'] }]))).toMatch(/^BROWSER_CLIENTS\.0\.redirect_uris\.0: a redirect URI must be https/);
    expect(refused(JSON.stringify([{ ...releases, redirect_uris: ['https://releases.example/cb#x'] }]))).toMatch(/fragment/);
    expect(refused(JSON.stringify([{ ...releases, redirect_uris: [] }]))).toMatch(/^BROWSER_CLIENTS\.0\.redirect_uris/);
    expect(refused(JSON.stringify([releases, releases]))).toMatch(/^BROWSER_CLIENTS\.1\.client_id: client_id keyway-releases is registered twice/);
    expect(refused(JSON.stringify([{ ...releases, scope: undefined }]))).toMatch(/^BROWSER_CLIENTS\.0\.scope/);
  });

  it('refuses a client registered for scope releases where PAS has no RELEASES_AUDIENCE', () => {
    const forReleases = JSON.stringify([releases, { ...releases, client_id: 'site', scope: 'releases' }]);
    expect(() => config(forReleases)).toThrow(/BROWSER_CLIENTS\.1\.scope: scope releases needs RELEASES_AUDIENCE/);
    expect(config(forReleases, 'https://releases.example').BROWSER_CLIENTS[1]?.scope).toBe('releases');
  });
});

describe('scopeFor (RFC 6749 §3.3)', () => {
  const [client] = BrowserClients.parse([releases]);
  it('gives a request naming no scope the registered one, and one within it what it asked for', () => {
    expect(scopeFor(client!, undefined)).toBe('feed:edr-events feed:dns-logs');
    expect(scopeFor(client!, 'feed:dns-logs')).toBe('feed:dns-logs');
    expect(scopeFor(client!, '  feed:dns-logs   feed:edr-events ')).toBe('feed:dns-logs feed:edr-events');
  });

  it('refuses a scope beyond the registration, and an empty one', () => {
    expect(scopeFor(client!, 'feed:edr-events operator')).toBeUndefined();
    expect(scopeFor(client!, 'feed:other')).toBeUndefined();
    expect(scopeFor(client!, ' ')).toBeUndefined();
  });
});
