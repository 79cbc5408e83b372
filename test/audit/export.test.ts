import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiError } from '@keyway/clients';
import { AUDIT_FEED, topicResource, type AuditEvent } from '@keyway/contracts';
import { createAgent, syslogSink } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/** A syslog receiver over TCP with octet-counted framing (RFC 6587 §3.4.1): every message it got. */
async function syslogServer() {
  const messages: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const space = buffered.indexOf(0x20);
        if (space < 0) return;
        const length = Number(buffered.subarray(0, space).toString('ascii'));
        if (buffered.length < space + 1 + length) return;
        messages.push(buffered.subarray(space + 1, space + 1 + length).toString('utf8'));
        buffered = buffered.subarray(space + 1 + length);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`,
    messages,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** RFC 5424 §6: HEADER SP STRUCTURED-DATA SP MSG, with our one SD element. */
const RFC5424 = /^<(\d{1,3})>1 (\S+) (\S+) keyway (\S+) (\S+) \[keyway@32473 tenant="([^"]*)" topic="([^"]*)" batch="([^"]*)" seq="(\d+)"\] (.*)$/s;

describe('the audit trail as a feed: exported to the tenant’s `audit` topic, pulled by the importer into syslog', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, auditExportIntervalMs: 200 });
  });
  afterAll(() => suite?.close());

  it('a tenant granted the audit feed receives its own events as RFC 5424 messages with structured data', async () => {
    const t = await provisionTenant(suite);
    const other = await provisionTenant(suite);
    await suite.operator.grantFeed(t.tenant, AUDIT_FEED);
    // events about the tenant after the grant: a login, a refresh, an admin change, a denial, a SAS mint
    const pair = await suite.pas.password(t.email, PASSWORD);
    const next = await suite.pas.refresh(pair.refresh_token);
    const reader = `reader@${t.tenant}.example`;
    await suite.operator.createUser(t.tenant, { email: reader, password: PASSWORD, roles: ['downloader'] });
    expect((await suite.pas.password(reader, PASSWORD).catch((err: unknown) => err)) as ApiError).toMatchObject({ status: 403 });
    await suite.pac.sas({ refresh_token: next.refresh_token, rights: 'listen' });
    // and about another tenant, which is not entitled to its trail
    await suite.pas.password(other.email, PASSWORD);

    const resource = topicResource(suite.urls.topic, t.tenant, AUDIT_FEED);
    // only Keyway writes the feed: a key that could send to it is refused
    const send = await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: (await suite.pas.password(t.email, PASSWORD)).refresh_token, resource, rights: 'listen-send' });
    expect(send.status).toBe(403);
    expect(send.data.error).toBe('insufficient_scope');

    const syslog = await syslogServer();
    const agent = createAgent(
      { credentials: { kind: 'password', username: t.email, password: PASSWORD }, resource, subscription: 'default', receiveTimeoutSec: 1 },
      { pas: suite.pas, pac: suite.pac, topic: suite.topic, sink: syslogSink({ url: syslog.url, hostname: 'siem-test' }), logger: silentLogger },
    );
    agent.start();
    const wanted = [
      'entitlement:admin.feed_granted',
      'pas:token.issued',
      'pas:token.refreshed',
      'entitlement:admin.user_created',
      'entitlement:authorization.denied',
      'pas:authorization.denied',
      'pac:sas_key.minted',
    ];
    const received = () =>
      syslog.messages.map((message) => {
        const match = RFC5424.exec(message);
        if (!match) throw new Error(`not an RFC 5424 message with our structured data: ${message}`);
        const [, pri, time, host, , msgId, tenant, topic, batch, seq, msg] = match;
        return { pri: Number(pri), time, host, msgId, tenant, topic, batch, seq: Number(seq), event: JSON.parse(msg as string) as AuditEvent };
      });
    try {
      for (const deadline = Date.now() + 20_000; ; ) {
        const seen = new Set(received().map(({ event }) => `${event.service}:${event.action}`));
        if (wanted.every((w) => seen.has(w))) break;
        if (Date.now() > deadline) throw new Error(`audit events missing from syslog: ${wanted.filter((w) => !seen.has(w)).join(', ')}`);
        await sleep(200);
      }
    } finally {
      await agent.stop();
      await syslog.close();
    }

    const messages = received();
    for (const m of messages) {
      // local0 (16) × 8 + informational (6); MSGID is the topic; SD names the tenant, topic, batch and seq
      expect(m).toMatchObject({ pri: 134, host: 'siem-test', msgId: AUDIT_FEED, tenant: t.tenant, topic: AUDIT_FEED });
      expect(m.batch).toMatch(new RegExp(`^audit:(pas|pac|entitlement|idp):${t.tenant}:\\d+-\\d+$`));
      // the MSG is the event as the trail holds it: its own tenant, action, outcome, and the chain hashes
      expect(m.event).toMatchObject({ tenant: t.tenant, action: expect.stringMatching(/^[a-z_]+\.[a-z_]+$/), outcome: expect.stringMatching(/^(success|denied|failure)$/) });
      expect(m.event.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(m.event.prevHash).toMatch(/^[0-9a-f]{64}$/);
      expect(m.seq).toBeGreaterThanOrEqual(m.event.seq);
    }
    const byAction = (service: string, action: string) => messages.filter(({ event }) => event.service === service && event.action === action).map(({ event }) => event);
    expect(byAction('pas', 'authorization.denied')[0]).toMatchObject({ outcome: 'denied', reason: 'role_missing' });
    expect(byAction('pas', 'token.issued')[0]).toMatchObject({ outcome: 'success', detail: { grant_type: 'password' } });
    // the other tenant's login went to nobody: it is not entitled to its trail
    expect(messages.some(({ event }) => event.tenant === other.tenant)).toBe(false);
    // each exported event is the one stored: the same id and hash as the query API answers
    const stored = await suite.auditor.events({ tenant: t.tenant, action: 'sas_key.minted', limit: 500 });
    const minted = byAction('pac', 'sas_key.minted').map((e) => [e.id, e.hash]);
    expect(stored.events.map((e) => [e.id, e.hash])).toEqual(expect.arrayContaining(minted));
  }, 60_000);
});
