import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp } from '@keyway/clients';
import type { Tenant } from '@keyway/contracts';
import { crmSignatureHeader } from '@keyway/entitlement';
import { startSuite, type Suite } from '@keyway/testkit';
import { rawClient } from '../helpers.ts';
import { operatorFiles, startKeyway } from '../cli/keyway.ts';

// Issue 9 (Low): control characters in tenant, user and feed names (set by the CRM from customer
// names) reached operators' terminals raw through the CLI, clipboard-writing OSC 52 included.

const SECRET = 'crm-webhook-secret-for-tests-0123456789';
/** OSC 52: "set the clipboard to `echo pwned`" (base64), then BEL; a terminal that honours it obeys silently. */
const OSC52 = '\u001b]52;c;ZWNobyBwd25lZA==\u0007';
const HOSTILE_NAMES = [`Acme ${OSC52}Corp`, 'Acme\u001b[2J', 'Acme\rEvil', 'Acme\u009b31m', 'Acme\u202etxt.exe', 'Acme\u2066x\u2069', 'Acme\u0000'];

let suite: Suite;
let dir: string;
beforeAll(async () => {
  suite = await startSuite({ crmWebhookSecret: SECRET });
  dir = mkdtempSync(join(tmpdir(), 'keyway-controls-'));
});
afterAll(async () => {
  await suite?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const admin = () => rawClient(suite, 'entitlement', 'operator');
const newId = () => `ctl-${randomUUID().slice(0, 8)}`;

function crmPost(body: string) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = crmSignatureHeader(SECRET, timestamp, '', Buffer.from(body));
  return createHttp({ baseUrl: suite.urls.entitlement, caPem: suite.pki.ca.certPem }).post('/v1/crm/webhook', Buffer.from(body), {
    headers: { 'content-type': 'application/json', 'x-keyway-timestamp': timestamp, 'x-keyway-signature': signature },
  });
}

const expectInvalid = (response: { status: number; data: unknown }, what: string) =>
  expect({ what, status: response.status, error: (response.data as { error?: string }).error }).toEqual({ what, status: 400, error: 'invalid_request' });

describe('issue 9: control characters in names are refused at the edge', () => {
  it('the admin API refuses them in tenant and tier names, on create and on rename', async () => {
    const tier = `tier-${randomUUID().slice(0, 6)}`;
    expect((await admin().put(`/v1/tiers/${tier}`, { name: 'Basic', feeds: ['edr-events'] })).status).toBe(201);
    const tenant = newId();
    expect((await admin().post('/v1/tenants', { id: tenant, name: 'Acme Corp', feeds: ['edr-events'] })).status).toBe(201);
    for (const name of HOSTILE_NAMES) {
      expectInvalid(await admin().post('/v1/tenants', { id: newId(), name, feeds: ['edr-events'] }), `create ${JSON.stringify(name)}`);
      expectInvalid(await admin().patch(`/v1/tenants/${tenant}`, { name }), `rename ${JSON.stringify(name)}`);
      expectInvalid(await admin().put(`/v1/tiers/${tier}`, { name, feeds: ['edr-events'] }), `tier ${JSON.stringify(name)}`);
    }
    expect(((await admin().get(`/v1/tenants/${tenant}`)).data as Tenant).name).toBe('Acme Corp');
    // Names from every script stay accepted, right-to-left marks included.
    expect((await admin().patch(`/v1/tenants/${tenant}`, { name: 'Société Ærø 株式会社 שלום\u200f' })).status).toBe(200);
  });

  it('the CRM webhook refuses them in customer names and ids, creating nothing', async () => {
    const tier = `tier-${randomUUID().slice(0, 6)}`;
    expect((await admin().put(`/v1/tiers/${tier}`, { name: 'Basic', feeds: ['edr-events'] })).status).toBe(201);
    const customerId = `Cust_${randomUUID().slice(0, 8).toUpperCase()}`;
    const delivery = (customer: { id: string; name: string }) => JSON.stringify({ id: `evt-${randomUUID()}`, customer, contract: { status: 'active', tier, contacts: [] } });
    expectInvalid(await crmPost(delivery({ id: customerId, name: `Customer ${OSC52}` })), 'OSC 52 in the customer name');
    expectInvalid(await crmPost(delivery({ id: `${customerId}\u001b[2J`, name: 'Customer' })), 'ESC in the customer id');
    expect((await admin().get(`/v1/tenants/${customerId.toLowerCase().replace(/_/g, '-')}`)).status).toBe(404);
    // the same delivery without them is applied
    expect((await crmPost(delivery({ id: customerId, name: 'Customer' }))).status).toBe(200);
  });
});

describe('issue 9: the CLI escapes control characters in what it prints', () => {
  it('a tenant stored before names were checked is shown escaped in tables and plain text, raw in --json', async () => {
    const id = newId();
    const name = `Acme ${OSC52}Corp\u202e`;
    // A record written before the API refused such names: straight into the entitlement store.
    const tenant: Tenant = { id, name, status: 'active', feeds: ['edr-events'], crmCustomerId: `C\u001b[31m`, createdAt: new Date().toISOString() };
    await suite.records.entitlement.set(`tenant:${id}`, JSON.stringify(tenant));
    await suite.records.entitlement.zadd('tenant-index', id);

    const files = operatorFiles(suite, dir);
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, 'no-session'),
      KEYWAY_ENTITLEMENT_URL: suite.urls.entitlement,
      KEYWAY_PAS_URL: suite.urls.pas,
      KEYWAY_PAC_URL: suite.urls.pac,
      KEYWAY_CA_FILE: files.ca,
    };
    const keyway = (...args: string[]) => startKeyway(['--cert', files.cert, '--key', files.key, ...args], env).done;
    const [shown, listed, asJson] = await Promise.all([keyway('tenant', 'show', id), keyway('tenant', 'list'), keyway('--json', 'tenant', 'show', id)]);
    for (const [what, run] of Object.entries({ shown, listed })) {
      expect({ what, code: run.code, stderr: run.stderr }).toEqual({ what, code: 0, stderr: '' });
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the raw control characters are what must not reach the terminal.
      expect({ what, raw: /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(run.stdout) }).toEqual({ what, raw: false });
      expect(run.stdout).toContain('Acme \\x1b]52;c;ZWNobyBwd25lZA==\\x07Corp\\u202e');
    }
    expect(shown.stdout).toContain('C\\x1b[31m');
    // JSON output escapes them as JSON does, and keeps the value exact for scripts.
    expect(asJson.code).toBe(0);
    expect(asJson.stdout).not.toContain('\u001b');
    expect((JSON.parse(asJson.stdout) as Tenant).name).toBe(name);
  }, 120_000);
});
