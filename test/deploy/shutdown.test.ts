import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp, topicClient, type StreamedMessage } from '@keyway/clients';
import { createRedisStore } from '@keyway/store';
import { AMQP_URL, deleteQueues, REDIS_URL, startSuite, testPki, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant } from '../helpers.ts';
import { exited, freePort, logLines, runService, stderrOf, waitReady, writePkiFiles } from './processes.ts';

/**
 * Graceful shutdown as a load balancer needs it (issue 15), on the topic service as its own process
 * (services/topic/src/main.ts), the service whose long polls and streams outlast any request: PAC,
 * PAS and the entitlement service run in this process (startSuite), all on the machine's Redis and
 * RabbitMQ. The topic process answers for the suite's public topic URL (the SAS keys' resource), as an
 * instance behind a load balancer does.
 */
describe('SIGTERM: out of rotation at once, requests drain, nothing accepted is lost', () => {
  let suite: Suite;
  let dir: string;
  let caPem: string;
  let tenant: string;
  let sasKey: string;
  const prefix = `keyway-shutdown-${Date.now()}`;
  const started: ChildProcess[] = [];

  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
    const pki = await testPki();
    caPem = pki.ca.certPem;
    dir = mkdtempSync(join(tmpdir(), 'keyway-shutdown-'));
    writePkiFiles(dir, pki);
    const provisioned = await provisionTenant(suite);
    tenant = provisioned.tenant;
    const { refresh_token } = await suite.pas.password(provisioned.email, PASSWORD);
    sasKey = (await suite.pac.sas({ refresh_token, rights: 'listen-send' })).sas_key;
  }, 60_000);

  afterAll(async () => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await suite?.close();
    const store = await createRedisStore({ url: REDIS_URL, prefix: `${prefix}:` });
    const keys = await store.keys('');
    if (keys.length > 0) await store.del(...keys);
    await store.close();
    if (tenant) await deleteQueues(AMQP_URL, (name) => !name.startsWith(`keyway.sub.${tenant}.`));
  });

  /** A topic process on a port of its own, ready; `env` over the defaults. */
  async function startTopic(env: Record<string, string> = {}) {
    const port = await freePort();
    const url = `https://localhost:${port}`;
    const child = runService('topic', {
      PORT: String(port),
      TLS_CERT_FILE: join(dir, 'topic.crt'),
      TLS_KEY_FILE: join(dir, 'topic.key'),
      TLS_CA_FILE: join(dir, 'ca.crt'),
      REDIS_URL,
      AMQP_URL,
      DATABASE_URL: suite.database!.serviceUrl('topic'),
      STORE_PREFIX: prefix,
      PUBLIC_BASE_URL: suite.urls.topic,
      INSTANCE_URL: url,
      PAC_URL: suite.urls.pac,
      ENTITLEMENT_URL: suite.urls.entitlement,
      // long, so a batch that comes back did so because the instance returned it, not because its lock expired
      LOCK_DURATION_SEC: '120',
      LOG_LEVEL: 'info',
      ...env,
    });
    started.push(child);
    await waitReady('topic', url, caPem, 60_000, child);
    return { child, url, topic: topicClient({ baseUrl: url, caPem }), http: createHttp({ baseUrl: url, caPem, timeoutMs: 5000 }) };
  }

  const readiness = async (http: ReturnType<typeof createHttp>) => {
    const answer = await http.get('/readyz');
    return { status: answer.status, body: answer.data as unknown };
  };

  it('readiness turns 503 at once; during the delay a new request is served and the long poll in flight answers with its batch; exit 0 within the bound', async () => {
    const { child, topic, http } = await startTopic({ SHUTDOWN_DELAY_SEC: '2', SHUTDOWN_DRAIN_SEC: '5' });
    expect(await readiness(http)).toMatchObject({ status: 200 });
    const polling = topic.receive(sasKey, tenant, 'edr-events', 'default', 30);
    await sleep(500); // the long poll is waiting at the broker
    const done = exited(child);
    const signalled = Date.now();
    child.kill('SIGTERM');

    await expect.poll(() => readiness(http), { timeout: 1000, interval: 50 }).toEqual({ status: 503, body: { status: 'draining' } });
    // served while draining, and the connection is closed after the answer (clients reconnect elsewhere)
    const batch = makeBatch(tenant, 'edr-events', 1);
    await topic.publish(sasKey, batch);
    const received = await polling;
    expect(received?.batch).toEqual(batch);
    await topic.complete(sasKey, tenant, 'edr-events', 'default', received!.message_id, received!.lock_token);
    const closing = await http.get('/healthz');
    expect(closing.headers.connection).toBe('close');

    const result = await done;
    expect(result.code, stderrOf(child)).toBe(0);
    // 2 s of delay, then nothing in flight: well within delay + drain
    expect(Date.now() - signalled).toBeLessThan(7000);
    expect(logLines(child).map((line) => line.msg)).toEqual(expect.arrayContaining(['shutting down', 'drained']));
  }, 90_000);

  it('a long poll still waiting when the drain starts answers 204 at once, long before its timeout', async () => {
    const { child, topic } = await startTopic({ SHUTDOWN_DRAIN_SEC: '20' });
    const polling = topic.receive(sasKey, tenant, 'edr-events', 'default', 50);
    await sleep(500);
    const done = exited(child);
    const signalled = Date.now();
    child.kill('SIGTERM');
    expect(await polling).toBeNull();
    expect((await done).code, stderrOf(child)).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(5000);
  }, 90_000);

  it('a stream ends cleanly at the drain; the instance serves until what it handed out is settled or the bound passes; the unsettled batch comes back after a restart', async () => {
    const first = await startTopic({ SHUTDOWN_DRAIN_SEC: '4' });
    const batches = [makeBatch(tenant, 'edr-events', 10), makeBatch(tenant, 'edr-events', 11)];
    for (const batch of batches) await first.topic.publish(sasKey, batch);
    const handedOut: StreamedMessage[] = [];
    const done = exited(first.child);
    let signalled = 0;
    // the generator ends without throwing: a clean end, no error line
    for await (const message of first.topic.stream(sasKey, tenant, 'edr-events', 'default', { prefetch: 5, timeoutSec: 60 })) {
      handedOut.push(message);
      if (handedOut.length === batches.length) {
        signalled = Date.now();
        first.child.kill('SIGTERM');
      }
    }
    expect(handedOut.map((message) => message.batch.id)).toEqual(batches.map((batch) => batch.id));
    // after the stream ended, the draining instance still settles what it handed out
    const [settled, unsettled] = handedOut as [StreamedMessage, StreamedMessage];
    await first.topic.complete(sasKey, tenant, 'edr-events', 'default', settled.message_id, settled.lock_token);
    expect((await done).code, stderrOf(first.child)).toBe(0);
    // the unsettled lock held the drain until its bound (4 s), no longer
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(3500);
    expect(Date.now() - signalled).toBeLessThan(8000);

    const second = await startTopic();
    const again = await second.topic.receive(sasKey, tenant, 'edr-events', 'default', 10);
    expect(again?.batch.id, 'the batch nobody settled is delivered again').toBe(unsettled.batch.id);
    await second.topic.complete(sasKey, tenant, 'edr-events', 'default', again!.message_id, again!.lock_token);
    expect(await second.topic.receive(sasKey, tenant, 'edr-events', 'default', 2), 'the settled one is not').toBeNull();
    const stopped = exited(second.child);
    second.child.kill('SIGTERM');
    expect((await stopped).code).toBe(0);
  }, 120_000);

  it('one Ctrl-C delivered twice (terminal and `pnpm start`) is one request: the repeat within 2 s is ignored and the drain runs to exit 0', async () => {
    const { child, http } = await startTopic({ SHUTDOWN_DELAY_SEC: '3' });
    const done = exited(child);
    const first = Date.now();
    child.kill('SIGINT');
    // handled before the repeat is sent, so the kernel cannot merge the two
    await expect.poll(() => readiness(http), { timeout: 1000, interval: 50 }).toMatchObject({ status: 503 });
    child.kill('SIGINT');
    const result = await done;
    expect(result.code, stderrOf(child)).toBe(0);
    expect(Date.now() - first, 'the delay was waited out').toBeGreaterThanOrEqual(3000);
    expect(logLines(child).map((line) => line.msg)).toEqual(expect.arrayContaining(['repeated signal ignored', 'drained']));
  }, 90_000);

  it('a second signal later than 2 s after the first exits at once, without waiting for the delay and the drain', async () => {
    const { child, http } = await startTopic({ SHUTDOWN_DELAY_SEC: '60' });
    const done = exited(child);
    const first = Date.now();
    child.kill('SIGTERM');
    await expect.poll(() => readiness(http), { timeout: 1000, interval: 50 }).toMatchObject({ status: 503 });
    await sleep(first + 2200 - Date.now());
    const second = Date.now();
    child.kill('SIGINT');
    const result = await done;
    expect(Date.now() - second).toBeLessThan(2000);
    // 128 + SIGINT, as a shell reports a process a signal ended
    expect(result.code).toBe(130);
  }, 90_000);
});
