import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEphemeralPki, type DevPki } from '@keyway/tls';
import { HecError, hecSink } from './http.ts';
import { closedAfterEach, listening, testBatch } from './test-fixtures.ts';

const TOKEN = '9b2f1c1e-4a8b-4f3e-a2a1-hec-token';

// .250: HEC's "time" carries the milliseconds
const batch = (seq: number, records: unknown[]) => testBatch(seq, { records, createdAt: '2024-05-06T07:08:09.250Z' });

/** HEC's batch body is JSON objects back to back; split it the way a collector reads it. */
function concatenatedJson(body: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = 0;
  let inString = false;
  for (let i = 0; i < body.length; i += 1) {
    const c = body[i];
    if (inString) {
      if (c === '\\') i += 1;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth += 1;
    else if (c === '}' && --depth === 0) {
      values.push(JSON.parse(body.slice(start, i + 1)));
      start = i + 1;
    }
  }
  expect(body.slice(start)).toBe('');
  return values;
}

interface Seen {
  method?: string;
  url?: string;
  authorization?: string;
  contentType?: string;
  events: unknown[];
}

async function collector(pki: DevPki, answer: (res: ServerResponse) => void) {
  const requests: Seen[] = [];
  const server = https.createServer({ cert: pki.certs.hec!.certPem, key: pki.certs.hec!.keyPem }, (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method,
        url: req.url,
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        events: concatenatedJson(Buffer.concat(chunks).toString('utf8')),
      });
      answer(res);
    });
  });
  const listener = await listening(server);
  return {
    url: listener.url,
    requests,
    close: listener.close,
  };
}

const json = (status: number, body: unknown) => (res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

let pki: DevPki;
beforeAll(() => {
  pki = createEphemeralPki(['hec']);
});
const open = closedAfterEach();

describe('HTTP sink (Splunk HEC)', () => {
  it('posts one event per record with the token, and resolves on 200 {"code":0}', async () => {
    const hec = await collector(pki, json(200, { text: 'Success', code: 0 }));
    open.push(hec);
    const sink = hecSink({ url: `${hec.url}/`, token: TOKEN, ca: pki.ca.certPem, index: 'security', host: 'agent-1' });
    open.push(sink);
    const records = [{ event: 'login', user: 'alice' }, { event: 'odd "}{" text' }];
    await sink.write(batch(4, records));

    expect(hec.requests).toHaveLength(1);
    const [request] = hec.requests as [Seen];
    expect(request).toMatchObject({ method: 'POST', url: '/services/collector/event', authorization: `Splunk ${TOKEN}`, contentType: 'application/json' });
    expect(request.events).toEqual(
      records.map((event) => ({
        time: 1714979289.25,
        host: 'agent-1',
        source: 'keyway',
        sourcetype: 'keyway:edr-events',
        index: 'security',
        event,
        fields: { tenant: 'acme', topic: 'edr-events', batch: 'b-4' },
      })),
    );
  });

  it('rejects on 503 and on a refusal code, and the error never carries the token', async () => {
    const answers = [json(503, { text: 'Server is busy', code: 9 }), json(400, { text: 'Invalid data format', code: 6 }), json(200, { text: 'odd', code: 14 })];
    const hec = await collector(pki, (res) => answers.shift()!(res));
    open.push(hec);
    const sink = hecSink({ url: hec.url, token: TOKEN, ca: pki.ca.certPem });
    open.push(sink);
    for (const [status, code] of [
      [503, 9],
      [400, 6],
      [200, 14],
    ]) {
      const err = await sink.write(batch(1, [{ a: 1 }])).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HecError);
      expect(err).toMatchObject({ status, hecCode: code });
      expect(String((err as Error).message)).not.toContain(TOKEN);
    }
  });

  it('rejects when the collector does not answer in time', async () => {
    const hec = await collector(pki, () => undefined);
    open.push(hec);
    const sink = hecSink({ url: hec.url, token: TOKEN, ca: pki.ca.certPem, timeoutMs: 300 });
    open.push(sink);
    await expect(sink.write(batch(1, [{ a: 1 }]))).rejects.toThrow(/did not answer within 300 ms/);
  });

  it('refuses a collector whose certificate does not chain to HEC_CA_FILE', async () => {
    const hec = await collector(pki, json(200, { text: 'Success', code: 0 }));
    open.push(hec);
    const sink = hecSink({ url: hec.url, token: TOKEN, ca: createEphemeralPki([]).ca.certPem });
    open.push(sink);
    await expect(sink.write(batch(1, [{ a: 1 }]))).rejects.toMatchObject({ code: expect.stringMatching(/CERT|SIGNATURE/) });
    expect(hec.requests).toHaveLength(0);
  });
});
