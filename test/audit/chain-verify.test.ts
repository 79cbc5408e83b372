import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import type { AuditEvent, AuditQuery, SasResponse, TokenResponse } from '@keyway/contracts';
import { REDIS_URL, startSuite, testPkiDir, type Suite } from '@keyway/testkit';
import { operatorFiles, startKeyway } from '../cli/keyway.ts';
import { PASSWORD, rawClient } from '../helpers.ts';

const jti = (token: string) => decodeJwt(token).jti as string;
const key = (e: AuditEvent) => `${e.service}:${e.action}`;

/** Real traffic through the suite, then the trail it left: queried, scanned for secrets, tampered with. */
describe('audit trail: what the services record, queried and verified', () => {
  let suite: Suite;
  const tenant = `t-${randomUUID().slice(0, 8)}`;
  const email = `agent@${tenant}.example`;
  const readerEmail = `reader@${tenant}.example`;
  let user: string;
  let first: TokenResponse;
  let second: TokenResponse;
  let sas: SasResponse;
  const times: Record<string, string> = {};
  const mark = async (name: string) => {
    // a millisecond apart from the events around it, so a time bound never splits one millisecond
    await sleep(5);
    times[name] = new Date().toISOString();
    await sleep(5);
  };

  /** Every page of a query, oldest first, `limit` at a time. */
  async function all(query: AuditQuery, limit = 3): Promise<AuditEvent[]> {
    const events: AuditEvent[] = [];
    let cursor: string | undefined;
    do {
      const page = await suite.auditor.events({ ...query, order: 'oldest', limit, cursor });
      expect(page.events.length).toBeLessThanOrEqual(limit);
      events.push(...page.events);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return events;
  }

  beforeAll(async () => {
    // reuse detection at once: a spent refresh token presented again revokes its family
    suite = await startSuite({ redisUrl: REDIS_URL, refreshReuseLeewaySec: 0 });
    await mark('start');
    await suite.operator.createTenant({ id: tenant, name: `Tenant ${tenant}`, feeds: ['edr-events'] });
    user = (await suite.operator.createUser(tenant, { email, password: PASSWORD, roles: ['full-control'] })).id;
    await suite.operator.createUser(tenant, { email: readerEmail, password: PASSWORD, roles: ['downloader'] });
    await mark('provisioned');
    first = await suite.pas.password(email, PASSWORD);
    second = await suite.pas.refresh(first.refresh_token);
    await mark('refreshed');
    sas = await suite.pac.sas({ refresh_token: second.refresh_token, rights: 'listen' });
    await mark('minted');
    // a feed login needs the full-control role: a read-only user is denied (entitlement and PAS both record it)
    const denied = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: readerEmail, password: PASSWORD }), { headers: FORM });
    expect(denied.status).toBe(403);
    const wrong = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: email, password: 'not the password at all' }), {
      headers: { ...FORM, 'x-request-id': 'audit-wrong-password' },
    });
    expect(wrong.status).toBe(400);
    // the first refresh token is spent: presenting it again is reuse, and the family goes
    const reused = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: first.refresh_token }), { headers: FORM });
    expect(reused.data.error).toBe('invalid_grant');
    // PAC revokes the family's SAS key as it follows PAS's announcement: wait for its record
    for (let waited = 0; (await suite.auditor.events({ tenant, action: 'sas_key.revoked' })).events.length === 0 && waited < 10_000; waited += 50) await sleep(50);
    await suite.operator.grantFeed(tenant, 'threat-intel');
    await mark('end');
  });
  afterAll(() => suite?.close());

  it('by tenant, in pages: exactly the events about the tenant, in time order', async () => {
    const events = await all({ tenant });
    expect(events.map(key).sort()).toEqual(
      [
        'entitlement:admin.tenant_created',
        'entitlement:admin.user_created',
        'entitlement:admin.user_created',
        'idp:credentials.set',
        'idp:credentials.set',
        'pas:token.issued',
        'pas:token.refreshed',
        'pac:sas_key.minted',
        'entitlement:authorization.denied',
        'pas:authorization.denied',
        'pas:refresh.reuse_detected',
        'pas:refresh_family.revoked',
        'pac:sas_key.revoked',
        'entitlement:admin.feed_granted',
      ].sort(),
    );
    expect(events.map((e) => e.time)).toEqual(events.map((e) => e.time).sort());
    expect(events.every((e) => e.tenant === tenant)).toBe(true);
    // every event but PAC's revocation, which follows PAS's announcement rather than a request
    expect(events.filter((e) => e.action !== 'sas_key.revoked').every((e) => e.requestId && e.sourceAddress)).toBe(true);
    // newest first is the same set the other way round
    const newest = await suite.auditor.events({ tenant, limit: 500 });
    expect(newest.events.map((e) => e.id)).toEqual(events.map((e) => e.id).reverse());
  });

  it('token.issued and token.refreshed carry the jti of the tokens, never the tokens', async () => {
    const [issued] = await all({ tenant, action: 'token.issued' });
    expect(issued).toMatchObject({
      service: 'pas',
      outcome: 'success',
      subject: user,
      clientId: 'keyway-importer',
      tokenId: jti(first.access_token),
      detail: { grant_type: 'password', username: email, refresh_jti: jti(first.refresh_token), family: decodeJwt(first.refresh_token).fid, scope: 'feed:edr-events' },
    });
    expect(issued?.sourceAddress).toMatch(/127\.0\.0\.1/);
    const [refreshed] = await all({ tenant, action: 'token.refreshed' });
    expect(refreshed).toMatchObject({
      subject: user,
      tokenId: jti(second.access_token),
      detail: { grant_type: 'refresh_token', refresh_jti: jti(second.refresh_token), spent_jti: jti(first.refresh_token) },
    });
  });

  it('by subject: the user’s own events, from login to the revoked family', async () => {
    const events = await all({ subject: user });
    // PAC revokes the key while PAS records the reuse and the revoked family: those records come in any order
    expect(events.map(key).slice(0, 4)).toEqual(['idp:credentials.set', 'pas:token.issued', 'pas:token.refreshed', 'pac:sas_key.minted']);
    expect(events.map(key).slice(4).sort()).toEqual(['pac:sas_key.revoked', 'pas:refresh.reuse_detected', 'pas:refresh_family.revoked']);
    const [registered, , , minted] = events;
    const reuse = events.find((e) => e.action === 'refresh.reuse_detected');
    const revoked = events.find((e) => e.action === 'refresh_family.revoked');
    const keyRevoked = events.find((e) => e.action === 'sas_key.revoked');
    // the IdP records who registered the credentials: the entitlement service's certificate
    expect(registered).toMatchObject({ clientId: 'entitlement', detail: { caller_cert: 'entitlement', created: 'true' } });
    // the family's SAS key went with it
    expect(keyRevoked).toMatchObject({ tokenId: sas.key_id, reason: 'family.revoked', detail: { family_reason: 'reuse_detected' } });
    expect(minted).toMatchObject({ tokenId: sas.key_id, outcome: 'success', detail: { topic: 'edr-events', rights: 'listen', refresh_jti: jti(second.refresh_token) } });
    expect(reuse).toMatchObject({ outcome: 'denied', reason: 'invalid_grant', tokenId: jti(first.refresh_token) });
    expect(revoked).toMatchObject({ outcome: 'success', reason: 'reuse_detected', requestId: reuse?.requestId });
  });

  it('by action and outcome: denials, and the failed login with its request id and the name tried', async () => {
    const denials = await all({ tenant, outcome: 'denied' });
    expect(denials.map(key).sort()).toEqual(['entitlement:authorization.denied', 'pas:authorization.denied', 'pas:refresh.reuse_detected']);
    for (const denial of denials.filter((e) => e.action === 'authorization.denied')) expect(denial.reason).toBe('role_missing');

    const failed = await all({ action: 'login.failed', from: times.start, to: times.end });
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ service: 'pas', outcome: 'denied', reason: 'invalid_grant', requestId: 'audit-wrong-password', detail: { grant_type: 'password', username: email } });
    expect(failed[0]?.tenant).toBeUndefined();
    expect(failed[0]?.subject).toBeUndefined();
  });

  it('by time range: from inclusive, to exclusive', async () => {
    expect((await all({ tenant, from: times.refreshed, to: times.minted })).map(key)).toEqual(['pac:sas_key.minted']);
    expect((await all({ tenant, from: times.start, to: times.provisioned })).map(key)).toEqual([
      'entitlement:admin.tenant_created',
      'idp:credentials.set',
      'entitlement:admin.user_created',
      'idp:credentials.set',
      'entitlement:admin.user_created',
    ]);
    const admin = await all({ tenant, stream: 'entitlement', action: 'admin.feed_granted', from: times.minted });
    expect(admin).toHaveLength(1);
    // the operator certificate made the change
    expect(admin[0]).toMatchObject({ clientId: 'operator', detail: { actor: 'operator_certificate', feed: 'threat-intel' } });
  });

  it('no token, SAS key or password is anywhere in the stored bytes', async () => {
    const bytes = JSON.stringify(await suite.audit.query('SELECT * FROM keyway_audit.events'));
    expect(bytes).toContain(jti(first.access_token));
    for (const secret of [first.access_token, first.refresh_token, second.access_token, second.refresh_token, sas.sas_key, PASSWORD]) {
      expect(bytes).not.toContain(secret);
    }
    for (const token of [first.access_token, first.refresh_token, second.access_token, second.refresh_token]) expect(bytes).not.toContain(token.split('.')[2]);
    const sig = decodeURIComponent(/sig=([^&]+)/.exec(sas.sas_key)?.[1] ?? 'missing');
    expect(bytes).not.toContain(sig);
    expect(bytes).not.toContain('eyJ');
  });

  it('an event changed in the database is reported as the first broken link, by the API and by `keyway audit verify` (through the API, and on the database directly)', async () => {
    expect(await suite.auditor.verifyAll()).toMatchObject({ ok: true });
    const [target] = await all({ tenant, action: 'token.refreshed' });
    const where = `WHERE stream = 'pas' AND seq = ${target?.seq}`;
    const [row] = await suite.audit.query<{ event: string }>(`SELECT event FROM keyway_audit.events ${where}`);
    await suite.audit.query(`UPDATE keyway_audit.events SET event = $1 ${where}`, [JSON.stringify({ ...(JSON.parse(row?.event as string) as AuditEvent), subject: 'someone-else' })]);

    expect(await suite.auditor.verify('pas')).toEqual({
      ok: false,
      stream: 'pas',
      brokenAt: { seq: target?.seq, id: target?.id },
      reason: 'hash_mismatch',
      detail: expect.stringContaining('was changed'),
    });
    const report = await suite.auditor.verifyAll();
    expect(report.ok).toBe(false);
    expect(report.streams.map((s) => [s.stream, s.ok])).toEqual([
      ['pas', false],
      ['pac', true],
      ['entitlement', true],
      ['idp', true],
    ]);

    const dir = mkdtempSync(join(tmpdir(), 'keyway-audit-cli-'));
    try {
      const files = operatorFiles(suite, dir);
      const env = { PATH: process.env.PATH ?? '', HOME: dir, XDG_CONFIG_HOME: dir, KEYWAY_AUDIT_URL: suite.urls.audit, KEYWAY_CA_FILE: files.ca };
      const keyway = (args: string[]) => startKeyway(['--cert', files.cert, '--key', files.key, ...args], env).done;
      const broken = await keyway(['audit', 'verify', '--stream', 'pas']);
      expect(broken.code).toBe(7);
      expect(broken.stdout).toContain(`pas: BROKEN at seq ${target?.seq} (event ${target?.id}): hash_mismatch`);
      // without the audit service: the database as keyway_audit, and the public key the team keeps
      const direct = await keyway(['audit', 'verify', '--database-url', suite.database?.serviceUrl('audit') as string, '--public-key', join(testPkiDir(), 'audit-checkpoint.key.pub')]);
      expect(direct.code).toBe(7);
      expect(direct.stdout).toContain(`pas: BROKEN at seq ${target?.seq} (event ${target?.id}): hash_mismatch: event ${target?.seq} was changed after it was written`);
      expect(direct.stdout).toMatch(/^pac: intact/m);
      const json = await keyway(['--json', 'audit', 'verify']);
      expect(json.code).toBe(7);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, streams: [{ stream: 'pas', brokenAt: { seq: target?.seq } }, { ok: true }, { ok: true }, { ok: true }] });
      const intact = await keyway(['audit', 'verify', '--stream', 'pac']);
      expect(intact.code).toBe(0);
      // minted, then revoked with its family
      expect(intact.stdout).toMatch(/^pac: intact \(2 events checked/);
      const listed = await keyway(['--json', 'audit', 'events', '--tenant', tenant, '--action', 'sas_key.minted']);
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout).events.map((e: AuditEvent) => e.tokenId)).toEqual([sas.key_id]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // five CLI processes (about 3 s each alone, far more while the whole suite runs)
  }, 150_000);

  it('deleting a whole stream and forging its retention anchor from the deleted head is caught by `keyway audit verify`, through the API and on the database directly', async () => {
    expect(await suite.auditor.verify('pac')).toMatchObject({ ok: true, anchorSeq: 0, headSeq: 2 });
    const [head] = await suite.audit.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM keyway_audit.events WHERE stream = 'pac' ORDER BY seq DESC LIMIT 1`);
    await suite.audit.query(`DELETE FROM keyway_audit.events WHERE stream = 'pac'`);
    await suite.audit.query(`INSERT INTO keyway_audit.anchors (stream, seq, hash) VALUES ('pac', $1, $2)`, [head?.seq, head?.hash]);

    const dir = mkdtempSync(join(tmpdir(), 'keyway-audit-cli-'));
    try {
      const files = operatorFiles(suite, dir);
      const env = { PATH: process.env.PATH ?? '', HOME: dir, XDG_CONFIG_HOME: dir, KEYWAY_AUDIT_URL: suite.urls.audit, KEYWAY_CA_FILE: files.ca };
      const keyway = (args: string[]) => startKeyway(['--cert', files.cert, '--key', files.key, ...args], env).done;
      const printed = 'pac: BROKEN at seq 1: unsigned_anchor: events 1..2 were removed without a signed trim: no trim signed with the checkpoint key names the retention anchor at seq 2';
      const viaApi = await keyway(['audit', 'verify', '--stream', 'pac']);
      expect([viaApi.code, viaApi.stdout.trim()]).toEqual([7, printed]);
      const direct = await keyway([
        'audit',
        'verify',
        '--stream',
        'pac',
        '--min-retention-days',
        '1',
        '--database-url',
        suite.database?.serviceUrl('audit') as string,
        '--public-key',
        join(testPkiDir(), 'audit-checkpoint.key.pub'),
      ]);
      expect([direct.code, direct.stdout.trim()]).toEqual([7, printed]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
