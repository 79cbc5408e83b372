import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEphemeralPki, type DevPki } from '@keyway/tls';
import { ElasticsearchError, elasticsearchSink, type ElasticsearchAuth } from './elasticsearch.ts';
import { badServer, closedAfterEach, expectNoSecrets, failure, listening, testBatch } from './test-fixtures.ts';

const API_KEY = 'VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==';
const USER = 'keyway-writer';
const PASSWORD = 'pa55-w0rd-secret';
const INDEX = 'logs-keyway-default';

type ItemError = { type: string; reason: string };
/** Elasticsearch 8's metadata fields: a document carrying one at its top is refused. */
const METADATA_FIELDS = ['_id', '_index', '_source', '_routing', '_version', '_seq_no', '_primary_term', '_ignored', '_field_names', '_doc_count', '_tier', '_data_stream_timestamp'];
interface Request {
  path: string;
  query: string;
  contentType?: string;
  authorization?: string;
}

/**
 * Elasticsearch 8's `_bulk` as documented, for the parts the sink uses: API key or basic auth (401
 * security_exception otherwise), NDJSON that must end in a newline, `create` (409
 * version_conflict_engine_exception when the _id exists) and `index`, a dynamic mapping that refuses a
 * field of another type than first seen (400 mapper_parsing_exception), a data stream (`logs-*-*`)
 * that takes `create` only and needs `@timestamp`; `itemFaults` answers the next items instead
 * (e.g. 429 es_rejected_execution_exception), `requestFaults` the next requests.
 */
async function elasticsearch(pki: DevPki) {
  const indices = new Map<string, Map<string, Record<string, unknown>>>();
  const mappings = new Map<string, Map<string, string>>();
  const requests: Request[] = [];
  const itemFaults: ({ status: number; error: ItemError } | null)[] = [];
  const requestFaults: ({ status: number; error: ItemError } | { status: number; raw: string })[] = [];
  let seqNo = 0;

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const failure = (res: ServerResponse, status: number, error: ItemError, headers?: Record<string, string>) => json(res, status, { error: { root_cause: [error], ...error }, status }, headers);
  const authorized = (header: string | undefined) => header === `ApiKey ${API_KEY}` || header === `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const typeOf = (value: unknown) =>
    value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'number' ? 'long' : typeof value === 'object' ? 'object' : typeof value === 'boolean' ? 'boolean' : 'text';

  function store(action: string, index: string, id: string, doc: Record<string, unknown>): { status: number; error?: ItemError } {
    const dataStream = /^logs-[^-]+-[^-]+$/.test(index);
    if (dataStream && action !== 'create') return { status: 400, error: { type: 'illegal_argument_exception', reason: `only write ops with an op_type of create are allowed in data streams` } };
    if (dataStream && doc['@timestamp'] === undefined)
      return { status: 400, error: { type: 'document_parsing_exception', reason: '[1:2] failed to parse: data stream timestamp field [@timestamp] is missing' } };
    const metadata = Object.keys(doc).find((field) => METADATA_FIELDS.includes(field));
    if (metadata) {
      return {
        status: 400,
        error: { type: 'document_parsing_exception', reason: `[1:2] Field [${metadata}] is a metadata field and cannot be added inside a document. Use the index API request parameters.` },
      };
    }
    const docs = indices.get(index) ?? new Map<string, Record<string, unknown>>();
    const mapping = mappings.get(index) ?? new Map<string, string>();
    if (action === 'create' && docs.has(id)) {
      return { status: 409, error: { type: 'version_conflict_engine_exception', reason: `[${id}]: version conflict, document already exists (current version [1])` } };
    }
    for (const [field, value] of Object.entries(doc)) {
      const known = mapping.get(field);
      if (known !== undefined && value !== null && known !== typeOf(value)) {
        return {
          status: 400,
          error: { type: 'mapper_parsing_exception', reason: `failed to parse field [${field}] of type [${known}] in document with id '${id}'. Preview of field's value: '${String(value)}'` },
        };
      }
    }
    for (const [field, value] of Object.entries(doc)) if (value !== null && !mapping.has(field)) mapping.set(field, typeOf(value));
    const existed = docs.has(id);
    docs.set(id, doc);
    indices.set(index, docs);
    mappings.set(index, mapping);
    return { status: existed ? 200 : 201 };
  }

  const server = https.createServer({ cert: pki.certs.es!.certPem, key: pki.certs.es!.keyPem }, (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'https://es.test');
      requests.push({ path: url.pathname, query: url.search, contentType: req.headers['content-type'], authorization: req.headers.authorization });
      if (!authorized(req.headers.authorization)) {
        return failure(
          res,
          401,
          { type: 'security_exception', reason: `unable to authenticate with provided credentials and anonymous access is not allowed for this request` },
          { 'www-authenticate': 'ApiKey, Basic realm="security"' },
        );
      }
      const target = /^\/([^/]+)\/_bulk$/.exec(url.pathname);
      if (req.method !== 'POST' || !target) return failure(res, 405, { type: 'illegal_argument_exception', reason: 'only POST /{index}/_bulk here' });
      if (!['application/x-ndjson', 'application/json'].includes(req.headers['content-type'] ?? '')) {
        return json(res, 406, { error: `Content-Type header [${req.headers['content-type']}] is not supported`, status: 406 });
      }
      const fault = requestFaults.shift();
      if (fault && 'raw' in fault) {
        res.writeHead(fault.status, { 'content-type': 'application/json' });
        return res.end(fault.raw);
      }
      if (fault) return failure(res, fault.status, fault.error);
      const body = Buffer.concat(chunks).toString('utf8');
      if (!body.endsWith('\n')) return failure(res, 400, { type: 'illegal_argument_exception', reason: 'The bulk request must be terminated by a newline [\\n]' });
      const lines = body.slice(0, -1).split('\n');
      const started = Date.now();
      const items: Array<Record<string, unknown>> = [];
      for (let i = 0; i < lines.length; i += 2) {
        const actionLine = JSON.parse(lines[i]!) as Record<string, { _index?: string; _id?: string }>;
        const [action, meta] = Object.entries(actionLine)[0]!;
        // rest.action.multi.allow_explicit_index: false, as hardened clusters set it
        if (meta._index !== undefined) return failure(res, 400, { type: 'illegal_argument_exception', reason: 'explicit index in bulk is not allowed' });
        const index = decodeURIComponent(target[1]!);
        const id = meta._id ?? `auto-${seqNo}`;
        const forced = itemFaults.shift();
        const outcome = forced ?? store(action, index, id, JSON.parse(lines[i + 1]!) as Record<string, unknown>);
        const ok = outcome.status < 300;
        items.push({
          [action]: {
            _index: index,
            _id: id,
            status: outcome.status,
            ...(ok
              ? { _version: 1, result: 'created', _shards: { total: 2, successful: 1, failed: 0 }, _seq_no: seqNo++, _primary_term: 1 }
              : { error: { ...outcome.error, index, shard: '0', index_uuid: 'aAsFqTI0Tc2W0LCWgPNrOA' } }),
          },
        });
      }
      json(res, 200, { errors: items.some((item) => (Object.values(item)[0] as { status: number }).status >= 300), took: Date.now() - started, items });
    });
  });
  const listener = await listening(server);
  return {
    url: listener.url,
    requests,
    itemFaults,
    requestFaults,
    docs: (index = INDEX) => indices.get(index) ?? new Map<string, Record<string, unknown>>(),
    close: listener.close,
  };
}

let pki: DevPki;
beforeAll(() => {
  pki = createEphemeralPki(['es']);
});
const open = closedAfterEach();

async function setup(options: { auth?: ElasticsearchAuth; ca?: string; index?: string } = {}) {
  const server = await elasticsearch(pki);
  open.push(server);
  const sink = elasticsearchSink({ url: `${server.url}/`, auth: options.auth ?? { apiKey: API_KEY }, index: options.index ?? INDEX, ca: options.ca ?? pki.ca.certPem });
  open.push(sink);
  return { server, sink };
}

const batch = (seq: number, records: unknown[]) => testBatch(seq, { id: `0b1c-${seq}`, records });
const noSecrets = (err: Error | undefined) => expectNoSecrets(err, [API_KEY, PASSWORD, Buffer.from(`${USER}:${PASSWORD}`).toString('base64')]);

describe('Elasticsearch / OpenSearch sink (_bulk)', () => {
  it('creates one document per record with an id from the batch and the record’s place, into the data stream named in the path (no explicit index per action), without forcing a refresh', async () => {
    const { server, sink } = await setup();
    await sink.write(batch(1, [{ event: 'login', user: 'zoë', '@timestamp': '2024-05-06T07:00:00.000Z' }, 'plain text']));

    expect(server.requests).toEqual([{ path: `/${INDEX}/_bulk`, query: '', contentType: 'application/x-ndjson', authorization: `ApiKey ${API_KEY}` }]);
    expect(Object.fromEntries(server.docs())).toEqual({
      '0b1c-1:0': { event: 'login', user: 'zoë', '@timestamp': '2024-05-06T07:00:00.000Z', keyway: { tenant: 'acme', topic: 'edr-events', batch: '0b1c-1', seq: 1 } },
      '0b1c-1:1': { record: 'plain text', '@timestamp': '2024-05-06T07:08:09.123Z', keyway: { tenant: 'acme', topic: 'edr-events', batch: '0b1c-1', seq: 1 } },
    });
  });

  it('takes a redelivered batch as stored (409 on create) and completes a batch stored in part, without duplicates', async () => {
    const { server, sink } = await setup();
    const records = [{ n: 1 }, { n: 2 }, { n: 3 }];
    await sink.write(batch(2, records));
    await sink.write(batch(2, records));
    expect(server.docs().size).toBe(3);

    // the cluster rejects the second document (write queue full): the batch fails, and its redelivery fills the gap
    server.itemFaults.push(null, { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'rejected execution of coordinating operation' } });
    const err = await failure(sink.write(batch(3, records)));
    expect(err).toBeInstanceOf(ElasticsearchError);
    expect(err!.message).toBe('Elasticsearch refused 1 of 3 documents; first: 429 es_rejected_execution_exception');
    expect([...server.docs().keys()].filter((id) => id.startsWith('0b1c-3'))).toEqual(['0b1c-3:0', '0b1c-3:2']);
    await sink.write(batch(3, records));
    expect([...server.docs().keys()].filter((id) => id.startsWith('0b1c-3')).sort()).toEqual(['0b1c-3:0', '0b1c-3:1', '0b1c-3:2']);
  });

  it('fails the batch on a mapping error naming its type and field, never the value nor the credentials', async () => {
    const { server, sink } = await setup();
    await sink.write(batch(4, [{ bytes: 10 }]));
    const err = await failure(sink.write(batch(5, [{ bytes: 20 }, { bytes: 'many' }])));
    expect(err).toMatchObject({ status: 400 });
    // the type and the field, never the reason: it quotes the value
    expect(err!.message).toBe('Elasticsearch refused 1 of 2 documents; first: 400 mapper_parsing_exception (field bytes)');
    expect(err!.stack).not.toContain('many');
    noSecrets(err);
    expect(server.docs().has('0b1c-5:1')).toBe(false);
  });

  it('renames the keys Elasticsearch reserves and the record’s own keyway (record_<key>), so the batch is stored and nothing overwritten', async () => {
    const { server, sink } = await setup();
    await sink.write(
      batch(20, [
        { _id: 'theirs', _index: 'other', _source: { a: 1 }, _note: 'x', keyway: 'mine', '': 'empty', n: 1 },
        { 'keyway.tenant': 'spoof', record__id: 'taken', _id: 'second' },
      ]),
    );
    const keyway = { tenant: 'acme', topic: 'edr-events', batch: '0b1c-20', seq: 20 };
    const timestamp = '2024-05-06T07:08:09.123Z';
    expect(server.docs().get('0b1c-20:0')).toEqual({
      record__id: 'theirs',
      record__index: 'other',
      record__source: { a: 1 },
      record__note: 'x',
      record_keyway: 'mine',
      record_: 'empty',
      n: 1,
      '@timestamp': timestamp,
      keyway,
    });
    // a renamed key meeting one of the record's own gets one more prefix
    expect(server.docs().get('0b1c-20:1')).toEqual({ 'record_keyway.tenant': 'spoof', record__id: 'taken', record_record__id: 'second', '@timestamp': timestamp, keyway });
  });

  it('names the field of a refused document however the reason spells it (Field […]), never the value', async () => {
    const { server, sink } = await setup();
    server.itemFaults.push({ status: 400, error: { type: 'document_parsing_exception', reason: "[1:9] Field [_secret] is a metadata field and cannot be added inside a document. Value 'hunter2'" } });
    const err = await failure(sink.write(batch(23, [{ a: 1 }])));
    expect(err!.message).toBe('Elasticsearch refused 1 of 1 documents; first: 400 document_parsing_exception (field _secret)');
  });

  it('counts a 409 as stored only when it is a version conflict of the create', async () => {
    const { server, sink } = await setup();
    server.itemFaults.push({ status: 409, error: { type: 'resource_already_exists_exception', reason: 'index [logs-keyway-default] already exists' } });
    await expect(sink.write(batch(21, [{ a: 1 }]))).rejects.toMatchObject({ status: 409, message: 'Elasticsearch refused 1 of 1 documents; first: 409 resource_already_exists_exception' });
  });

  it('fails the batch when a 200 answer is not one item per document, or not JSON', async () => {
    const { server, sink } = await setup();
    server.requestFaults.push(
      { status: 200, raw: JSON.stringify({ errors: false, took: 1, items: [{ create: { _id: '0b1c-22:0', status: 201 } }] }) },
      { status: 200, raw: '<html>OK</html>' },
      { status: 200, raw: JSON.stringify({ errors: false, took: 1 }) },
    );
    const records = [{ a: 1 }, { a: 2 }];
    await expect(sink.write(batch(22, records))).rejects.toThrow('Elasticsearch _bulk answered 1 items for 2 documents');
    await expect(sink.write(batch(22, records))).rejects.toThrow('Elasticsearch _bulk answered 200 without items');
    await expect(sink.write(batch(22, records))).rejects.toThrow('Elasticsearch _bulk answered 200 without items');
  });

  it('fails the batch when the cluster refuses the request: credentials (401), overload (429), unavailable (503)', async () => {
    const wrong = await setup({ auth: { username: USER, password: `${PASSWORD}x` } });
    const unauthorized = await failure(wrong.sink.write(batch(6, [{ a: 1 }])));
    expect(unauthorized).toMatchObject({ status: 401, message: expect.stringContaining('security_exception') });
    noSecrets(unauthorized);

    const { server, sink } = await setup();
    server.requestFaults.push(
      { status: 429, error: { type: 'circuit_breaking_exception', reason: '[parent] Data too large' } },
      { status: 503, error: { type: 'unavailable_shards_exception', reason: 'primary shard is not active' } },
    );
    await expect(sink.write(batch(7, [{ a: 1 }]))).rejects.toMatchObject({ status: 429, message: 'Elasticsearch _bulk answered 429: circuit_breaking_exception' });
    await expect(sink.write(batch(7, [{ a: 1 }]))).rejects.toMatchObject({ status: 503 });
    expect(server.docs().size).toBe(0);
    await sink.write(batch(7, [{ a: 1 }]));
    expect(server.docs().size).toBe(1);
  });

  it('authenticates with a user and password (OpenSearch), into a plain index', async () => {
    const { server, sink } = await setup({ auth: { username: USER, password: PASSWORD }, index: 'keyway-events' });
    await sink.write(batch(8, [{ a: 1 }]));
    expect(server.requests[0]!.authorization).toBe(`Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`);
    expect([...server.docs('keyway-events').keys()]).toEqual(['0b1c-8:0']);
  });

  it('fails the batch within its deadline when the cluster never answers or trickles, and when the answer has no end', async () => {
    for (const behaviour of ['silent', 'trickle', 'flood'] as const) {
      const server = await badServer({ cert: pki.certs.es!.certPem, key: pki.certs.es!.keyPem }, behaviour);
      open.push(server);
      const sink = elasticsearchSink({ url: server.url, auth: { apiKey: API_KEY }, index: INDEX, ca: pki.ca.certPem, timeoutMs: 400 });
      open.push(sink);
      const started = Date.now();
      const err = await failure(sink.write(batch(10, [{ a: 1 }])));
      expect(err!.message).toMatch(behaviour === 'flood' ? /^localhost:\d+ answered more than \d+ bytes$/ : /^localhost:\d+ did not answer within 400 ms$/);
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(server.requests()).toBe(1);
    }
  });

  it('refuses a cluster whose certificate does not chain to ES_CA_FILE', async () => {
    const { server, sink } = await setup({ ca: createEphemeralPki([]).ca.certPem });
    await expect(sink.write(batch(9, [{ a: 1 }]))).rejects.toMatchObject({ code: expect.stringMatching(/CERT|SIGNATURE/) });
    expect(server.requests).toHaveLength(0);
  });
});
