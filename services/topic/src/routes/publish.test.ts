import { request, type Agent } from 'node:https';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DEPTH } from '../batches/scan.ts';
import { BROKERS, expectErrorBody, expectRefusal, sleep, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';

const MAX_BATCH_BYTES = 64 * 1024;

describe.each(BROKERS)('publish (%s broker)', { timeout: 20_000 }, (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTopic(kind, { MAX_BATCH_BYTES });
  });
  afterAll(() => h.close());

  const path = (t: TestTopic) => `/tenants/${t.tenant}/topics/${t.topic}/messages`;
  const post = (t: TestTopic, body: unknown, headers: Record<string, string> = {}) =>
    h.http.post(path(t), body, { headers: { authorization: t.sas('send'), 'content-type': 'application/json', ...headers } });
  /** declares the default subscription (as a subscriber would) so "never delivered" means something */
  const subscribe = (t: TestTopic) => h.client.receive(t.sas('listen'), t.tenant, t.topic, 'default', 0);
  const receive = (t: TestTopic, timeoutSec = 1) => h.client.receive(t.sas('listen'), t.tenant, t.topic, 'default', timeoutSec);

  it('answers 201 with the batch id once confirmed, and the batch is delivered as published', async () => {
    const topic = h.newTopic();
    const batch = topic.batch({ records: [{ a: 1 }, 'text', [1, 2, { b: null }]] });
    await expect(h.client.publish(topic.sas('send'), batch)).resolves.toEqual({ id: batch.id, tenant: topic.tenant, topic: topic.topic });
    const message = await receive(topic, 5);
    expect(message).toMatchObject({ message_id: batch.id, delivery_count: 1, batch });
  });

  it('refuses a body that is not declared application/json with 415', async () => {
    const topic = h.newTopic();
    const response = await post(topic, JSON.stringify(topic.batch()), { 'content-type': 'text/plain' });
    expectErrorBody(response, 415, 'unsupported_media_type');
  });

  it('refuses malformed JSON with 400', async () => {
    const topic = h.newTopic();
    expectErrorBody(await post(topic, '{"id": "b-1", "records": [}'), 400, 'invalid_request');
  });

  it('refuses a body over MAX_BATCH_BYTES with 413, plain or gzip-inflated', async () => {
    const topic = h.newTopic();
    const big = JSON.stringify(topic.batch({ records: ['x'.repeat(MAX_BATCH_BYTES)] }));
    expectErrorBody(await post(topic, big), 413, 'payload_too_large');
    // a few hundred bytes on the wire, well over the limit once inflated
    const bomb = gzipSync(big);
    expect(bomb.length).toBeLessThan(1024);
    expectErrorBody(await post(topic, bomb, { 'content-encoding': 'gzip' }), 413, 'payload_too_large');
  });

  it('accepts a gzip body and delivers the inflated batch', async () => {
    const topic = h.newTopic();
    await subscribe(topic);
    const batch = topic.batch({ records: Array.from({ length: 200 }, (_, i) => ({ i, line: 'GET /index.html 200' })) });
    const response = await post(topic, gzipSync(JSON.stringify(batch)), { 'content-encoding': 'gzip' });
    expect(response.status).toBe(201);
    expect(response.data).toEqual({ id: batch.id, tenant: topic.tenant, topic: topic.topic });
    expect((await receive(topic, 5))?.batch).toEqual(batch);
  });

  it('refuses a corrupt gzip body with 400', async () => {
    const topic = h.newTopic();
    const gz = gzipSync(JSON.stringify(topic.batch()));
    const corrupt = Buffer.concat([gz.subarray(0, 10), Buffer.from('not deflate data at all'), gz.subarray(10)]);
    expectErrorBody(await post(topic, corrupt, { 'content-encoding': 'gzip' }), 400, 'invalid_request');
    expectErrorBody(await post(topic, gz.subarray(0, gz.length - 12), { 'content-encoding': 'gzip' }), 400, 'invalid_request');
  });

  it('refuses a batch that does not match the schema, naming the field', async () => {
    const topic = h.newTopic();
    const { id: _id, ...noId } = topic.batch();
    const response = await post(topic, noId);
    expectErrorBody(response, 400, 'invalid_request');
    expect(response.data.error_description).toMatch(/^body\.id/);
    expect((await post(topic, topic.batch({ seq: -1 }))).data.error_description).toMatch(/^body\.seq/);
  });

  it('refuses a batch whose tenant or topic differs from the path with 400', async () => {
    const topic = h.newTopic();
    const other = h.newTopic();
    const wrongTenant = await post(topic, { ...topic.batch(), tenant: other.tenant });
    expectErrorBody(wrongTenant, 400, 'invalid_request');
    expect(wrongTenant.data.error_description).toMatch(/tenant/);
    expectErrorBody(await post(topic, { ...topic.batch(), topic: other.topic }), 400, 'invalid_request');
  });

  const nested = (levels: number): unknown => {
    let value: unknown = 'leaf';
    for (let i = 0; i < levels; i++) value = { v: value };
    return value;
  };

  it.each([
    ['a __proto__ key', JSON.parse('{"user": {"__proto__": {"isAdmin": true}}}') as unknown, /__proto__/],
    ['a constructor key', { a: [{ constructor: { prototype: { polluted: 1 } } }] }, /constructor/],
    ['a prototype key', { prototype: 1 }, /prototype/],
    ['nesting deeper than the limit', nested(MAX_DEPTH), /nested deeper than 32/],
    ['a NUL character', { msg: 'abc\u0000def' }, /NUL/],
    ['an unpaired surrogate', { msg: 'abc\ud800def' }, /surrogate/],
    ['an unpaired surrogate in a key', { 'k\udc00': 1 }, /surrogate/],
  ])('refuses a record with %s (400) and never delivers it', async (_name, record, why) => {
    const topic = h.newTopic();
    await subscribe(topic);
    // sent as raw JSON text: the keys and characters must reach the server exactly as written
    const body = JSON.stringify(topic.batch({ records: ['harmless', record] }));
    const response = await post(topic, body);
    expectErrorBody(response, 400, 'invalid_request');
    expect(response.data.error_description).toMatch(why);
    expect(await receive(topic)).toBeNull();
  });

  it('accepts what the scanner must not refuse: deep-enough nesting, surrogate pairs, "constructor" as a value', async () => {
    const topic = h.newTopic();
    const batch = topic.batch({ records: [nested(MAX_DEPTH - 4), { emoji: '😀 𝄞', field: 'constructor', proto: '__proto__' }] });
    await expect(h.client.publish(topic.sas('send'), batch)).resolves.toBeDefined();
    expect((await receive(topic, 5))?.batch).toEqual(batch);
  });

  it('answers 503 temporarily_unavailable with Retry-After when the broker is down, and nothing is accepted', async () => {
    const down = await startTopic(kind);
    try {
      const topic = down.newTopic();
      await down.broker.close();
      const response = await down.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/messages`, topic.batch(), {
        headers: { authorization: topic.sas('send') },
      });
      expectErrorBody(response, 503, 'temporarily_unavailable');
      expect(response.headers['retry-after']).toBe('5');
      await expectRefusal(down.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 0), 503, 'temporarily_unavailable');
    } finally {
      await down.close();
    }
  });
});

// issue 9: the topic service read up to 1 MiB of body before checking the SAS key
describe.each(BROKERS)('publish authenticates before reading the body (%s broker)', { timeout: 20_000 }, (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTopic(kind);
  });
  afterAll(() => h.close());

  /** uploads `total` bytes slowly (64 KiB every 100 ms, about 1.5 s); resolves with the answer and how much was sent by then */
  const slowUpload = (t: TestTopic, authorization: string, total: number) =>
    new Promise<{ status: number | undefined; body: string; sentBeforeAnswer: number; connection: string | undefined }>((resolve, reject) => {
      let sent = 0;
      const req = request(new URL(`/tenants/${t.tenant}/topics/${t.topic}/messages`, h.url), {
        method: 'POST',
        agent: h.http.defaults.httpsAgent as Agent,
        headers: { authorization, 'content-type': 'application/json', 'content-length': String(total) },
      });
      // once the server has answered and closed, further writes fail: that is the point
      req.on('error', () => undefined);
      req.on('response', (res) => {
        const sentBeforeAnswer = sent;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body, sentBeforeAnswer, connection: res.headers.connection }));
        res.on('error', reject);
      });
      void (async () => {
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        while (sent < total && !req.destroyed) {
          const part = chunk.subarray(0, Math.min(chunk.length, total - sent));
          req.write(part);
          sent += part.length;
          await sleep(100);
        }
        if (!req.destroyed) req.end();
      })();
    });

  it('issue 9: a 1 MB upload with a bad key is refused with 401 before the body is sent, and the connection closes', async () => {
    const topic = h.newTopic();
    const total = 1_000_000;
    const answer = await slowUpload(topic, topic.sas('send', { namespaceKey: 'not-the-tenant-key' }), total);
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_token' });
    expect(answer.sentBeforeAnswer).toBeLessThan(total / 2);
    expect(answer.connection).toBe('close');
    // and without any key at all
    const none = await slowUpload(topic, '', total);
    expect({ status: none.status, early: none.sentBeforeAnswer < total / 2 }).toEqual({ status: 401, early: true });
  });

  it('an authenticated upload of the same size is read and published', async () => {
    const topic = h.newTopic();
    const batch = topic.batch({ records: ['x'.repeat(900_000)] });
    const response = await h.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/messages`, batch, { headers: { authorization: topic.sas('send') } });
    expect(response.status).toBe(201);
  });
});
