import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedMessage } from '@keyway/contracts';
import { BROKERS, expectErrorBody, expectRefusal, sleep, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';

/** what the next line of a stream is, or 'nothing' when none comes within ms */
async function within<T>(next: Promise<T>, ms: number): Promise<T | 'nothing'> {
  let timer: NodeJS.Timeout | undefined;
  const nothing = new Promise<'nothing'>((resolve) => {
    timer = setTimeout(() => resolve('nothing'), ms);
  });
  try {
    return await Promise.race([next, nothing]);
  } finally {
    clearTimeout(timer);
  }
}

async function readAll(body: Readable): Promise<string> {
  body.setEncoding('utf8');
  let text = '';
  for await (const chunk of body) text += chunk as string;
  return text;
}

describe.each(BROKERS)('streaming receive (%s broker)', { timeout: 30_000 }, (kind) => {
  let h: Harness;
  /** LOCK_DURATION_SEC = 1 */
  let short: Harness;
  /** STREAM_HEARTBEAT_SEC = 1 */
  let beating: Harness;
  beforeAll(async () => {
    [h, short, beating] = await Promise.all([startTopic(kind), startTopic(kind, { LOCK_DURATION_SEC: 1 }), startTopic(kind, { STREAM_HEARTBEAT_SEC: 1 })]);
  });
  afterAll(() => Promise.all([h.close(), short.close(), beating.close()]));

  const streamPath = (t: TestTopic) => `/tenants/${t.tenant}/topics/${t.topic}/subscriptions/default/messages/stream`;
  /** declares the default subscription, as a subscriber would before anything is published */
  const subscribe = (on: Harness, t: TestTopic) => on.client.receive(t.sas('listen'), t.tenant, t.topic, 'default', 0);
  const publishMany = async (on: Harness, t: TestTopic, n: number) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await on.client.publish(t.sas('send'), t.batch())).id);
    return ids;
  };
  const complete = (on: Harness, t: TestTopic, m: ReceivedMessage) => on.client.complete(t.sas('listen'), t.tenant, t.topic, 'default', m.message_id, m.lock_token);

  // issue 9: an open stream outlived its key; an expired key now ends it as a revoked one does
  it('issue 9: a stream whose key expires hands nothing out after the expiry and ends with an invalid_token line; the batch stays queued', async () => {
    const topic = h.newTopic();
    await subscribe(h, topic);
    const expiring = topic.sas('listen', { expiresInSec: 2 });
    const lines = h.client.stream(expiring, topic.tenant, topic.topic, 'default', { prefetch: 5, timeoutSec: 20 });
    // the stream may end before anything is published: it checks its key while idle too
    const next = lines.next().then(
      (result) => result,
      (err: unknown) => err,
    );
    await sleep(3000);
    const [published] = await publishMany(h, topic, 1);
    expect(await within(next, 5000)).toMatchObject({ status: 401, code: 'invalid_token' });
    const left = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 2);
    expect(left?.message_id).toBe(published);
    await complete(h, topic, left!);
  });

  it('delivers every batch once, never more than prefetch unsettled at a time; each settle gives one credit back', async () => {
    const topic = h.newTopic();
    await subscribe(h, topic);
    const published = await publishMany(h, topic, 10);
    const lines = h.client.stream(topic.sas('listen'), topic.tenant, topic.topic, 'default', { prefetch: 3, timeoutSec: 20 });
    const received: ReceivedMessage[] = [];
    const arrived = async (next: Promise<IteratorResult<ReceivedMessage>>) => {
      const result = await next;
      if (result.done) throw new Error('the stream ended early');
      received.push(result.value);
    };
    for (let i = 0; i < 3; i++) await arrived(lines.next());
    // three locked and unsettled: the fourth waits for credit
    let next = lines.next();
    expect(await within(next, 700)).toBe('nothing');
    // from here on, settling the oldest lets exactly one more through
    for (let settled = 0; settled < published.length; settled++) {
      await complete(h, topic, received[settled]!);
      if (received.length < published.length) {
        await arrived(next);
        if (received.length < published.length) next = lines.next();
      }
    }
    expect(received.map((m) => m.message_id)).toEqual(published);
    expect(received.every((m) => m.delivery_count === 1)).toBe(true);
    expect(new Set(received.map((m) => m.lock_token)).size).toBe(published.length);
    await lines.return(undefined);
    expect(await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 1)).toBeNull();
  });

  it('abandon and an expired lock give credit back, and the message comes again on the stream', async () => {
    const topic = short.newTopic();
    await subscribe(short, topic);
    const [id] = await publishMany(short, topic, 1);
    const lines = short.client.stream(topic.sas('listen'), topic.tenant, topic.topic, 'default', { prefetch: 1, timeoutSec: 20 });
    const first = await lines.next();
    expect(first.value).toMatchObject({ message_id: id, delivery_count: 1 });
    // not settled: the lock (1 s) expires, which frees the one credit
    const second = await lines.next();
    expect(second.value).toMatchObject({ message_id: id, delivery_count: 2 });
    const m = second.value as ReceivedMessage;
    await short.client.abandon(topic.sas('listen'), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token);
    const third = await lines.next();
    expect(third.value).toMatchObject({ message_id: id, delivery_count: 3 });
    await complete(short, topic, third.value as ReceivedMessage);
    await lines.return(undefined);
  });

  it('a client that disconnects gets its locks released at once: the messages are delivered again', async () => {
    const topic = h.newTopic();
    await subscribe(h, topic);
    const published = await publishMany(h, topic, 3);
    const abort = new AbortController();
    const received: string[] = [];
    for await (const m of h.client.stream(topic.sas('listen'), topic.tenant, topic.topic, 'default', { prefetch: 5, timeoutSec: 20, signal: abort.signal })) {
      received.push(m.message_id);
      if (received.length === 3) abort.abort();
    }
    expect(received).toEqual(published);
    // the locks would last 60 s; released, the messages come back well before
    const started = Date.now();
    const again: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
      expect(m?.delivery_count).toBe(2);
      again.push(m!.message_id);
      await complete(h, topic, m!);
    }
    expect(again.sort()).toEqual([...published].sort());
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('breaking out of the loop closes the stream and releases its unsettled messages too', async () => {
    const topic = h.newTopic();
    await subscribe(h, topic);
    const [id] = await publishMany(h, topic, 1);
    for await (const m of h.client.stream(topic.sas('listen'), topic.tenant, topic.topic, 'default', { prefetch: 2, timeoutSec: 20 })) {
      expect(m.message_id).toBe(id);
      break;
    }
    const again = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
    expect(again).toMatchObject({ message_id: id, delivery_count: 2 });
    await complete(h, topic, again!);
  });

  it('ends after timeout seconds; the locks it handed out stay valid and settle after the end', async () => {
    const topic = h.newTopic();
    await subscribe(h, topic);
    const published = await publishMany(h, topic, 2);
    const started = Date.now();
    const received: ReceivedMessage[] = [];
    for await (const m of h.client.stream(topic.sas('listen'), topic.tenant, topic.topic, 'default', { timeoutSec: 2 })) received.push(m);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(4000);
    expect(received.map((m) => m.message_id)).toEqual(published);
    for (const m of received) await complete(h, topic, m);
    expect(await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 0)).toBeNull();
  });

  it('answers 200 application/x-ndjson and writes an empty line as heartbeat while idle', async () => {
    const topic = beating.newTopic();
    const response = await beating.http.post<Readable>(streamPath(topic), undefined, {
      params: { timeout: 3 },
      headers: { authorization: topic.sas('listen') },
      responseType: 'stream',
    });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = await readAll(response.data);
    // about one a second for three seconds (timers may run late), and nothing else
    expect(body).toMatch(/^\n{1,3}$/);
  });

  it('heartbeats only while idle: lines are one JSON message each, the stream ends cleanly', async () => {
    const topic = beating.newTopic();
    await subscribe(beating, topic);
    const [id] = await publishMany(beating, topic, 1);
    const response = await beating.http.post<Readable>(streamPath(topic), undefined, {
      params: { timeout: 2, prefetch: 1 },
      headers: { authorization: topic.sas('listen') },
      responseType: 'stream',
    });
    const lines = (await readAll(response.data)).split('\n');
    expect(lines.at(-1)).toBe('');
    const messages = lines.filter((line) => line !== '').map((line) => JSON.parse(line) as ReceivedMessage);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ message_id: id, delivery_count: 1 });
    await complete(beating, topic, messages[0]!);
  });

  it('requires listen: a send key is 403 insufficient_scope, before any stream starts', async () => {
    const topic = h.newTopic();
    const response = await h.http.post(streamPath(topic), undefined, { params: { timeout: 1 }, headers: { authorization: topic.sas('send') } });
    expectErrorBody(response, 403, 'insufficient_scope');
    const consume = async () => {
      for await (const _ of h.client.stream(topic.sas('send'), topic.tenant, topic.topic, 'default', { timeoutSec: 1 })) throw new Error('a message was streamed');
    };
    await expectRefusal(consume(), 403, 'insufficient_scope');
    await expectRefusal(
      (async () => {
        for await (const _ of h.client.stream(topic.sas('listen', { expiresInSec: -60 }), topic.tenant, topic.topic, 'default')) break;
      })(),
      401,
      'invalid_token',
    );
  });

  it('refuses prefetch outside 1..500 and timeout outside 1..300 with 400', async () => {
    const topic = h.newTopic();
    const headers = { authorization: topic.sas('listen') };
    for (const params of [{ prefetch: 0 }, { prefetch: 501 }, { prefetch: 'many' }, { timeout: 0 }, { timeout: 301 }, { timeout: 1.5 }]) {
      expectErrorBody(await h.http.post(streamPath(topic), undefined, { params, headers }), 400, 'invalid_request');
    }
  });

  it('a broker outage is 503 before the stream starts, and one error line ends a stream that was running', async () => {
    const down = await startTopic(kind);
    try {
      const topic = down.newTopic();
      await subscribe(down, topic);
      const running = (async () => {
        const got: ReceivedMessage[] = [];
        for await (const m of down.client.stream(topic.sas('listen'), topic.tenant, topic.topic, 'default', { timeoutSec: 20 })) got.push(m);
        return got;
      })();
      // it rejects while the broker closes; expectRefusal looks at it after
      running.catch(() => undefined);
      await sleep(300);
      await down.broker.close();
      await expectRefusal(running, 503, 'temporarily_unavailable');
      for (const t of [topic, down.newTopic()]) {
        const refused = await down.http.post(streamPath(t), undefined, { headers: { authorization: t.sas('listen') }, params: { timeout: 1 } });
        expectErrorBody(refused, 503, 'temporarily_unavailable');
        expect(refused.headers['retry-after']).toBe('5');
      }
    } finally {
      await down.close();
    }
  });
});
