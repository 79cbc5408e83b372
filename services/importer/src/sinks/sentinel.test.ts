import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEphemeralPki, type DevPki } from '@keyway/tls';
import { SentinelError, sentinelSink, type SentinelSinkOptions } from './sentinel.ts';
import { badServer, closedAfterEach, expectNoSecrets, failure, listening, testBatch } from './test-fixtures.ts';

const TENANT_ID = '5b1f1e0c-2d4f-4c55-9d2e-6f0b3a1c7e21';
const CLIENT_ID = 'a8d3c1f2-0e4b-4a7c-8f6d-2b9e1c5d3a70';
const SECRET = 'Qx8~s3cret.client-secret_value';
const DCR = 'dcr-00000000000000000000000000000000';
const STREAM = 'Custom-KeywayEvents';
const LIMIT = 1_000_000;

type Fault = { status: number; headers?: Record<string, string>; body?: unknown };
interface Call {
  bytes: number;
  rows: unknown[];
  status: number;
  /** the request's content-encoding and its body's first two bytes (1f8b: gzip) */
  encoding?: string;
  magic: string;
}

/**
 * Entra ID's token endpoint and the Logs Ingestion API as Azure documents them: client credentials for
 * the monitor scope; POST /dataCollectionRules/{id}/streams/{stream}?api-version=2023-01-01 with a
 * bearer token, JSON (optionally gzip'd) array, at most 1 MB, answered 204; errors as
 * `{"error":{"code","message"}}`: 400 (api-version, content type, body, stream), 401 (token), 404
 * (rule), 413 (size), and whatever `faults` queues for the next valid calls (429 / 503 with Retry-After, 400).
 */
async function azure(pki: DevPki, options: { tokenLifetimeSec?: number } = {}) {
  const tokens = new Map<string, number>(); // token → expires at
  const calls: Call[] = [];
  /** answers for the next valid calls, in order; null: answer as usual */
  const faults: (Fault | null)[] = [];
  /** answers for the next token requests, in order */
  const tokenFaults: Fault[] = [];
  const tokenRequests: Array<Record<string, string>> = [];
  const rows: unknown[] = [];
  /** every request to an ingestion path, valid or not */
  let ingestRequests = 0;
  let issued = 0;

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const azureError = (res: ServerResponse, status: number, code: string, message: string) => json(res, status, { error: { code, message } });

  const server = https.createServer({ cert: pki.certs.azure!.certPem, key: pki.certs.azure!.keyPem }, (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url!, 'https://azure.test');
      if (url.pathname.endsWith('/oauth2/v2.0/token')) {
        const form = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
        tokenRequests.push(form);
        const tokenFault = tokenFaults.shift();
        if (tokenFault) return json(res, tokenFault.status, tokenFault.body ?? { error: 'temporarily_unavailable', error_description: 'AADSTS50196: try again later.' }, tokenFault.headers);
        if (url.pathname !== `/${TENANT_ID}/oauth2/v2.0/token`) return json(res, 400, { error: 'invalid_request', error_description: 'AADSTS90002: Tenant not found.' });
        if (req.headers['content-type'] !== 'application/x-www-form-urlencoded' || form.grant_type !== 'client_credentials') {
          return json(res, 400, { error: 'unsupported_grant_type', error_description: 'AADSTS70003: The app requested an unsupported grant type.' });
        }
        if (form.scope !== 'https://monitor.azure.com/.default') return json(res, 400, { error: 'invalid_scope', error_description: 'AADSTS70011: The provided value for scope is not valid.' });
        if (form.client_id !== CLIENT_ID || form.client_secret !== SECRET) {
          return json(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 0' });
        }
        issued += 1;
        const accessToken = `eyJ0eXAi.token-${issued}.sig`;
        const lifetime = options.tokenLifetimeSec ?? 3599;
        tokens.set(accessToken, Date.now() + lifetime * 1000);
        return json(res, 200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: accessToken });
      }
      const match = /^\/dataCollectionRules\/([^/]+)\/streams\/([^/]+)$/.exec(url.pathname);
      ingestRequests += 1;
      if (req.method !== 'POST' || !match) return azureError(res, 404, 'NotFound', 'The requested resource was not found.');
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!bearer || !((tokens.get(bearer) ?? 0) > Date.now())) return azureError(res, 401, 'InvalidToken', 'The provided token is missing, invalid or expired.');
      if (url.searchParams.get('api-version') !== '2023-01-01') return azureError(res, 400, 'InvalidApiVersion', 'The api-version query parameter is missing or not supported.');
      if (req.headers['content-type'] !== 'application/json') return azureError(res, 400, 'InvalidContentType', 'Content-Type must be application/json.');
      if (decodeURIComponent(match[1]!) !== DCR) return azureError(res, 404, 'NotFound', 'Data collection rule not found.');
      if (decodeURIComponent(match[2]!) !== STREAM) return azureError(res, 400, 'InvalidStream', `Stream ${match[2]} is not declared in the data collection rule.`);
      let raw = body;
      if (raw.length > LIMIT) return azureError(res, 413, 'ContentLengthLimitExceeded', 'Maximum request body size is 1 MB.');
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(body);
      if (raw.length > LIMIT) return azureError(res, 413, 'ContentLengthLimitExceeded', 'Maximum uncompressed request body size is 1 MB.');
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        return azureError(res, 400, 'InvalidPayload', 'The body is not valid JSON.');
      }
      if (!Array.isArray(parsed)) return azureError(res, 400, 'InvalidPayload', 'The body must be a JSON array.');
      const fault = faults.shift();
      calls.push({ bytes: raw.length, rows: parsed, status: fault?.status ?? 204, encoding: req.headers['content-encoding'], magic: body.subarray(0, 2).toString('hex') });
      if (fault) return json(res, fault.status, fault.body ?? { error: { code: 'Throttled', message: 'Too many requests.' } }, fault.headers);
      rows.push(...parsed);
      res.writeHead(204).end();
    });
  });
  const listener = await listening(server);
  return {
    url: listener.url,
    rows,
    calls,
    faults,
    tokenFaults,
    tokenRequests,
    ingestRequests: () => ingestRequests,
    revokeTokens: () => tokens.clear(),
    close: listener.close,
  };
}

let pki: DevPki;
beforeAll(() => {
  pki = createEphemeralPki(['azure']);
});
const open = closedAfterEach();

async function setup(serverOptions: { tokenLifetimeSec?: number } = {}, sinkOptions: Partial<SentinelSinkOptions> = {}) {
  const server = await azure(pki, serverOptions);
  open.push(server);
  const sink = sentinelSink({
    tenantId: TENANT_ID,
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    authorityUrl: server.url,
    endpoint: server.url,
    dcrId: DCR,
    stream: STREAM,
    ca: pki.ca.certPem,
    backoffMs: 50,
    ...sinkOptions,
  });
  open.push(sink);
  return { server, sink };
}

const batch = (seq: number, records: unknown[]) => testBatch(seq, { id: `b-${seq}`, records });
const noSecrets = (err: Error | undefined) => expectNoSecrets(err, [SECRET, 'eyJ0eXAi']);

describe('Sentinel sink (Azure Monitor Logs Ingestion API)', () => {
  it('gets a token with client credentials, posts the rows gzip’d to the DCR stream, and keeps the token for the next batch', async () => {
    const { server, sink } = await setup();
    await sink.write(batch(1, [{ event: 'login', user: 'zoë' }, { event: 'logout' }]));
    await sink.write(batch(2, [{ event: 'again' }]));

    expect(server.rows).toEqual([
      { TimeGenerated: '2024-05-06T07:08:09.123Z', KeywayTenant: 'acme', KeywayTopic: 'edr-events', KeywayBatch: 'b-1', KeywaySeq: 1, Event: { event: 'login', user: 'zoë' } },
      { TimeGenerated: '2024-05-06T07:08:09.123Z', KeywayTenant: 'acme', KeywayTopic: 'edr-events', KeywayBatch: 'b-1', KeywaySeq: 1, Event: { event: 'logout' } },
      { TimeGenerated: '2024-05-06T07:08:09.123Z', KeywayTenant: 'acme', KeywayTopic: 'edr-events', KeywayBatch: 'b-2', KeywaySeq: 2, Event: { event: 'again' } },
    ]);
    expect(server.tokenRequests).toEqual([{ grant_type: 'client_credentials', client_id: CLIENT_ID, client_secret: SECRET, scope: 'https://monitor.azure.com/.default' }]);
    expect(server.calls.map(({ encoding, magic }) => ({ encoding, magic }))).toEqual([
      { encoding: 'gzip', magic: '1f8b' },
      { encoding: 'gzip', magic: '1f8b' },
    ]);
  });

  it('splits a batch into calls of at most 1 MB, all answered 204 before the write resolves', async () => {
    const { server, sink } = await setup();
    const records = Array.from({ length: 25 }, (_, i) => ({ i, blob: 'x'.repeat(100_000) }));
    await sink.write(batch(3, records));
    expect(server.calls.length).toBe(3);
    for (const call of server.calls) expect(call.bytes).toBeLessThanOrEqual(1_000_000);
    expect(server.rows.map((row) => (row as { Event: { i: number } }).Event.i)).toEqual(records.map((r) => r.i));
  });

  it('fails the batch when a call is refused, even after earlier calls of it were taken', async () => {
    const { server, sink } = await setup();
    // the first call is taken, the second refused
    server.faults.push(null, { status: 400, body: { error: { code: 'InvalidPayload', message: 'Column KeywaySeq has the wrong type.' } } });
    const records = Array.from({ length: 15 }, (_, i) => ({ i, blob: 'y'.repeat(100_000) }));
    const err = await failure(sink.write(batch(4, records)));
    expect(err).toBeInstanceOf(SentinelError);
    expect(err).toMatchObject({ status: 400, message: 'Logs Ingestion answered 400 InvalidPayload: Column KeywaySeq has the wrong type.' });
    expect(server.calls.map((call) => call.status)).toEqual([204, 400]);
    expect(server.rows).toHaveLength(server.calls[0]!.rows.length);
    noSecrets(err);
  });

  it('refuses at once on 400 (unknown stream) and 413 (over Azure’s limit), without retrying', async () => {
    const wrongStream = await setup({}, { stream: 'Custom-Nope' });
    const err = await failure(wrongStream.sink.write(batch(5, [{ a: 1 }])));
    expect(err).toMatchObject({ status: 400, message: expect.stringContaining('InvalidStream') });
    noSecrets(err);
    expect(wrongStream.server.ingestRequests()).toBe(1);

    const tooBig = await setup({}, { maxCallBytes: 3_000_000 });
    const big = await failure(
      tooBig.sink.write(
        batch(
          6,
          Array.from({ length: 20 }, () => ({ blob: 'z'.repeat(100_000) })),
        ),
      ),
    );
    expect(big).toMatchObject({ status: 413, message: expect.stringContaining('ContentLengthLimitExceeded') });
    expect(tooBig.server.rows).toEqual([]);
    expect(tooBig.server.ingestRequests()).toBe(1);
  });

  it('honours Retry-After on 429 and 503, then succeeds; gives up after maxAttempts', async () => {
    const { server, sink } = await setup({}, { maxAttempts: 3 });
    server.faults.push({ status: 429, headers: { 'retry-after': '1' } }, { status: 503, headers: { 'retry-after': '0' }, body: { error: { code: 'ServiceUnavailable', message: 'Try later.' } } });
    const started = Date.now();
    await sink.write(batch(7, [{ a: 1 }]));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(server.calls.map((call) => call.status)).toEqual([429, 503, 204]);
    expect(server.rows).toHaveLength(1);

    server.faults.push({ status: 503 }, { status: 503 }, { status: 503 });
    const err = await failure(sink.write(batch(8, [{ a: 2 }])));
    expect(err).toMatchObject({ status: 503 });
    expect(server.calls.slice(3).map((call) => call.status)).toEqual([503, 503, 503]);
    expect(server.rows).toHaveLength(1);
  });

  it('reads a Retry-After given as an HTTP date', async () => {
    const { server, sink } = await setup();
    // a whole second at least one second ahead (HTTP dates have no fraction)
    const at = (Math.floor(Date.now() / 1000) + 2) * 1000;
    server.faults.push({ status: 429, headers: { 'retry-after': new Date(at).toUTCString() } });
    await sink.write(batch(16, [{ a: 1 }]));
    expect(Date.now()).toBeGreaterThanOrEqual(at - 20);
    expect(server.calls.map((call) => call.status)).toEqual([429, 204]);
  });

  it('tries the token request again on 429 and 5xx after its Retry-After', async () => {
    const { server, sink } = await setup();
    server.tokenFaults.push({ status: 429, headers: { 'retry-after': '1' } }, { status: 503 });
    const started = Date.now();
    await sink.write(batch(17, [{ a: 1 }]));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(server.tokenRequests).toHaveLength(3);
    expect(server.rows).toHaveLength(1);
  });

  it('fails the batch at once when the sink is closed during a retry’s wait', async () => {
    const { server, sink } = await setup();
    server.faults.push({ status: 429, headers: { 'retry-after': '30' } });
    const started = Date.now();
    const pending = failure(sink.write(batch(18, [{ a: 1 }])));
    await expect.poll(() => server.calls.length).toBe(1);
    await sink.close();
    const err = await pending;
    expect(err).toMatchObject({ status: 429, message: expect.stringMatching(/^Sentinel sink closed while waiting to retry: Logs Ingestion answered 429/) });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(server.ingestRequests()).toBe(1);
  });

  it('fails at once when Azure asks to wait longer than maxRetryAfterMs', async () => {
    const { server, sink } = await setup({}, { maxRetryAfterMs: 5_000 });
    server.faults.push({ status: 429, headers: { 'retry-after': '120' } });
    const started = Date.now();
    await expect(sink.write(batch(9, [{ a: 1 }]))).rejects.toMatchObject({ status: 429 });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('renews the token before it expires, and once more when Azure answers 401', async () => {
    // a 2 s token is renewed halfway through its life
    const { server, sink } = await setup({ tokenLifetimeSec: 2 });
    await sink.write(batch(10, [{ a: 1 }]));
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await sink.write(batch(11, [{ a: 2 }]));
    expect(server.tokenRequests).toHaveLength(2);

    server.revokeTokens();
    await sink.write(batch(12, [{ a: 3 }]));
    expect(server.tokenRequests).toHaveLength(3);
    expect(server.rows).toHaveLength(3);
  });

  it('fails the batch when Entra ID refuses the secret, and never puts the secret in the error', async () => {
    const { server, sink } = await setup({}, { clientSecret: `${SECRET}-wrong` });
    const err = await failure(sink.write(batch(13, [{ a: 1 }])));
    expect(err).toMatchObject({ status: 401, message: 'Entra ID token request answered 401 invalid_client: AADSTS7000215: Invalid client secret provided.' });
    noSecrets(err);
    expect(server.calls).toHaveLength(0);
  });

  it('fails the batch within its deadlines when the ingestion endpoint never answers or trickles', async () => {
    for (const behaviour of ['silent', 'trickle'] as const) {
      const slow = await badServer({ cert: pki.certs.azure!.certPem, key: pki.certs.azure!.keyPem }, behaviour);
      open.push(slow);
      const { server } = await setup();
      const sink = sentinelSink({
        tenantId: TENANT_ID,
        clientId: CLIENT_ID,
        clientSecret: SECRET,
        authorityUrl: server.url,
        endpoint: slow.url,
        dcrId: DCR,
        stream: STREAM,
        ca: pki.ca.certPem,
        backoffMs: 50,
        maxAttempts: 2,
        timeoutMs: 400,
      });
      open.push(sink);
      const started = Date.now();
      await expect(sink.write(batch(15, [{ a: 1 }]))).rejects.toThrow(/^localhost:\d+ did not answer within 400 ms$/);
      // two attempts of 400 ms and a 50 ms pause
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(slow.requests()).toBe(2);
    }
  });

  it('refuses an endpoint whose certificate does not chain to the CA', async () => {
    const { server, sink } = await setup({}, { ca: createEphemeralPki([]).ca.certPem });
    await expect(sink.write(batch(14, [{ a: 1 }]))).rejects.toMatchObject({ code: expect.stringMatching(/CERT|SIGNATURE/) });
    expect(server.tokenRequests).toHaveLength(0);
  });
});
