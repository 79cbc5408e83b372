import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentRights, entitlementAuthorizer } from './authorizer.ts';
import type { Principal } from './principal.ts';

/** The entitlement service's side, as far as this client sees it: what it was asked, and an answer. */
let server: Server;
let base: string;
const asked: { method?: string; url?: string; body?: unknown }[] = [];
let answer: unknown = {};
beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      asked.push({ method: req.method, url: req.url, body: JSON.parse(text || 'null') });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server?.close(resolve)));

const principal: Principal = { sub: 'u-1', tenant: 'acme', roles: ['downloader'], tokenId: 'jti-1' };

describe('entitlementAuthorizer: the release rights, asked of the entitlement service', () => {
  it('asks POST /v1/authorize for the subject and tenant with access "releases", never with the token', async () => {
    answer = { allow: true, roles: ['downloader'], releases: { edr: { rights: ['download'], versions: '^2.0.0' } }, feeds: [], rights: {} };
    const authorizer = entitlementAuthorizer({ baseUrl: base, caPem: '' });
    expect(await authorizer.decide(principal)).toEqual({ allow: true, roles: ['downloader'], releases: { edr: { rights: ['download'], versions: '^2.0.0' } }, feeds: [], rights: {} });
    expect(asked.at(-1)).toEqual({ method: 'POST', url: '/v1/authorize', body: { sub: 'u-1', tenant: 'acme', access: 'releases' } });
  });

  it('a denial grants nothing; an answer that is not a decision rejects (never read as allow)', async () => {
    const authorizer = entitlementAuthorizer({ baseUrl: base, caPem: '' });
    answer = { allow: false, reason: 'tenant_suspended' };
    expect(await currentRights(authorizer, principal)).toEqual({ rights: {}, denied: 'tenant_suspended' });
    answer = { allow: true };
    await expect(authorizer.decide(principal)).rejects.toThrow();
    // an allow that names no release rights grants none
    answer = { allow: true, roles: ['full-control'], feeds: [], rights: {} };
    expect(await currentRights(authorizer, principal)).toEqual({ rights: {} });
  });

  it('currentRights: the token’s claim narrows the answer (rights and products), never widens it', async () => {
    answer = {
      allow: true,
      roles: ['publisher'],
      feeds: [],
      rights: {},
      releases: { edr: { rights: ['upload', 'publish', 'download'], versions: '*' }, agent: { rights: ['download'], versions: '*' } },
    };
    const authorizer = entitlementAuthorizer({ baseUrl: base, caPem: '' });
    const claimed = { edr: { rights: ['download' as const, 'withdraw' as const], versions: '*' }, other: { rights: ['download' as const], versions: '*' } };
    expect(await currentRights(authorizer, { ...principal, claimed })).toEqual({ rights: { edr: { rights: ['download'], versions: '*' } } });
  });
});
