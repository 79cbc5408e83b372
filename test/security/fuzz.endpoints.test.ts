import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import { parse as parseQueryString } from 'node:querystring';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  BASE_PATHS,
  CRM_HEADERS,
  auditApi,
  auditPaths,
  entitlementApi,
  entitlementPaths,
  idpApi,
  idpPaths,
  pacApi,
  pacPaths,
  pasApi,
  pasPaths,
  releasesApi,
  releasesPaths,
  topicApi,
  topicPaths,
  type Method,
  type OperationSpec,
  type PathSpecs,
} from '@keyway/contracts';
import { RELEASES_CLIENT, REDIS_URL, startSuite, type ServiceName, type Suite } from '@keyway/testkit';
import { startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { crmSignatureHeader } from '@keyway/entitlement';
import { publicKeyFromKeyObject, publicKeyLine } from '@keyway/ssh';
import { makeBatch, PASSWORD, provisionTenant } from '../helpers.ts';
import { operatorSession, provisionOperator } from '../operators/operator.ts';

/**
 * Issue 9 (Low): a property-based fuzz of every operation of every service, driven by the zod
 * contracts the OpenAPI documents are built from. Each request is valid-shaped (generated from the
 * operation's schemas, with the fixtures' real tenant, feed, user and credentials mixed in) or
 * hostile (wrong types, huge, unicode and control-character strings, deep JSON, duplicate and extra
 * parameters, wrong content types, `..` / %00 / malformed escapes in path parameters), sent as the
 * legitimate caller or not. Every answer must be:
 * - below 500, within the operation's own wait plus REQUEST_BOUND_MS (no hang);
 * - an ErrorBody (`{ error, error_description }`) when it is 4xx and came from the app;
 * - not 2xx when the contract refuses what was sent (path, query, content type or body).
 *
 * Seeded and reproducible: KEYWAY_FUZZ_SEED (default below) and KEYWAY_FUZZ_RUNS (runs per operation);
 * a failure prints the seed, the path to replay it and the shrunk request.
 */
const SEED = Number(process.env.KEYWAY_FUZZ_SEED ?? 20_261_201);
const RUNS = Number(process.env.KEYWAY_FUZZ_RUNS ?? 40);
const REQUEST_BOUND_MS = 10_000;
const CRM_SECRET = 'crm-webhook-secret-for-the-fuzz-0123456789';

const SERVICE_PATHS: Record<ServiceName, PathSpecs> = { idp: idpPaths, entitlement: entitlementPaths, pas: pasPaths, pac: pacPaths, topic: topicPaths, audit: auditPaths, releases: releasesPaths };
const DOCUMENTS: Record<ServiceName, { paths: Record<string, Record<string, unknown>> }> = {
  idp: idpApi,
  entitlement: entitlementApi,
  pas: pasApi,
  pac: pacApi,
  topic: topicApi,
  audit: auditApi,
  releases: releasesApi,
};

/** The certificate an mTLS-only operation's legitimate caller holds (requireService in each route). */
function legitimateService(service: ServiceName, template: string, method: Method): string {
  if (service === 'idp') return template === '/v1/credentials/ssh-key/verify' ? 'releases' : template.includes('/verify') ? 'pas' : 'entitlement';
  if (service === 'entitlement') return template === '/internal/v1/tenants/{tenant}/feeds/{feed}' ? 'audit' : 'pas';
  if (service === 'pas') return 'pac';
  if (service === 'pac') return 'topic';
  if (service === 'topic') return template.startsWith('/internal/v1/locks/') ? 'topic' : template.endsWith('/messages') ? 'audit' : 'entitlement';
  throw new Error(`no mTLS caller known for ${method} ${service} ${template}`);
}

interface Operation {
  service: ServiceName;
  template: string;
  method: Method;
  spec: OperationSpec;
}

const operations: Operation[] = (Object.keys(SERVICE_PATHS) as ServiceName[]).flatMap((service) =>
  Object.entries({ ...BASE_PATHS, ...SERVICE_PATHS[service] }).flatMap(([template, methods]) =>
    Object.entries(methods).map(([method, spec]) => ({ service, template, method: method as Method, spec: spec as OperationSpec })),
  ),
);

// ---------------------------------------------------------------------------------------------
// Arbitraries: JSON Schema (z.toJSONSchema of the contracts, as the OpenAPI documents hold them) →
// fast-check, plus hostile values.

type JsonSchema = Record<string, unknown>;
const toSchema = (schema: z.ZodType): JsonSchema => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

/**
 * Values the fixtures make real, by property or parameter name, per service: they let requests get
 * past lookups. Each service gets its own tenant and credentials, so what the fuzz of one service
 * suspends, rotates, revokes or spends leaves the others' fixtures working.
 */
let knownByService: Record<ServiceName, Record<string, unknown[]>>;
let known: Record<string, unknown[]> = {};

const CONTROL_AND_BIDI = ['\u0000', '\u001b]52;c;ZWNobyBwd25lZA==\u0007', '\u001b[2J', '\r\n', '\u009b', '\u202e', '\u2066', '\u2028', '\ufeff', '\ud800'];
const HOSTILE_STRINGS = [
  '',
  ' ',
  '..',
  '../../../etc/passwd',
  '%00',
  '__proto__',
  'constructor',
  '*',
  'keyway:*',
  "' OR 1=1 --",
  '{"$gt":""}',
  '\r\nSet-Cookie: a=b',
  'a'.repeat(300),
  'é'.repeat(5000),
  '𝕂'.repeat(2000),
  ...CONTROL_AND_BIDI.map((c) => `x${c}y`),
];
const deepArray = (depth: number): unknown => {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};
const deepObject = (depth: number): unknown => {
  let value: unknown = {};
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
};

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, 0, -1, 1e308, Number.MAX_SAFE_INTEGER + 2, 1.5, [], {}, deepArray(2000), deepObject(1000), ['a', 'b'], { $ne: null }),
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.jsonValue({ maxDepth: 3 }),
);

function stringArbitrary(schema: JsonSchema): fc.Arbitrary<string> {
  const min = (schema.minLength as number | undefined) ?? 0;
  const max = Math.min((schema.maxLength as number | undefined) ?? 64, 64);
  switch (schema.format) {
    case 'uri':
      return fc.webUrl();
    case 'email':
      return fc.emailAddress();
    case 'date-time':
      return fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
    case 'uuid':
      return fc.uuid();
  }
  if (typeof schema.pattern === 'string') {
    try {
      const limit = (schema.maxLength as number | undefined) ?? Infinity;
      return fc.stringMatching(new RegExp(schema.pattern, 'u')).filter((s) => s.length >= min && s.length <= limit);
    } catch {
      // a pattern fast-check cannot generate from: plain strings, the server still checks them
    }
  }
  return fc.string({ minLength: min, maxLength: Math.max(min, max) });
}

/** Valid-shaped values for a JSON Schema, with the fixtures' known values mixed in by name. */
function fromSchema(schema: JsonSchema, name?: string): fc.Arbitrary<unknown> {
  const base = fromSchemaOnly(schema);
  const real = name ? known[name] : undefined;
  return real && real.length > 0 ? fc.oneof({ arbitrary: fc.constantFrom(...real), weight: 3 }, { arbitrary: base, weight: 1 }) : base;
}

function fromSchemaOnly(schema: JsonSchema): fc.Arbitrary<unknown> {
  if ('const' in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  const alternatives = (schema.oneOf ?? schema.anyOf) as JsonSchema[] | undefined;
  if (alternatives) return fc.oneof(...alternatives.map((s) => fromSchema(s)));
  if (Array.isArray(schema.allOf)) return fromSchema((schema.allOf as JsonSchema[])[0]!);
  switch (schema.type) {
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
      const required = (schema.required ?? []) as string[];
      if (Object.keys(properties).length === 0) return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
      return fc.record(Object.fromEntries(Object.entries(properties).map(([key, s]) => [key, fromSchema(s, key)])), { requiredKeys: required });
    }
    case 'array': {
      const items = (schema.items ?? {}) as JsonSchema;
      const minLength = (schema.minItems as number | undefined) ?? 0;
      return fc.array(fromSchema(items), { minLength, maxLength: Math.max(minLength, Math.min((schema.maxItems as number | undefined) ?? 4, 4)) });
    }
    case 'string':
      return stringArbitrary(schema);
    case 'integer':
      return fc.integer({ min: Math.max((schema.minimum as number | undefined) ?? -1000, -1e9), max: Math.min((schema.maximum as number | undefined) ?? 1e6, 1e9) });
    case 'number':
      return fc.double({ noNaN: true, min: (schema.minimum as number | undefined) ?? -1e6, max: (schema.maximum as number | undefined) ?? 1e6 });
    case 'boolean':
      return fc.boolean();
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** A valid-shaped value, or one with a top-level member replaced, removed or added, or a hostile value instead. */
function withHostility(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const mutated = fc.tuple(valid, fc.nat(), hostileValue, fc.constantFrom('replace', 'remove', 'add')).map(([value, index, hostile, how]) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return hostile;
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    const key = keys.length > 0 ? keys[index % keys.length]! : 'extra';
    if (how === 'remove') delete copy[key];
    else if (how === 'add') copy[`x-${index % 7}`] = hostile;
    else copy[key] = hostile;
    return copy;
  });
  return fc.oneof({ arbitrary: valid, weight: 3 }, { arbitrary: mutated, weight: 3 }, { arbitrary: hostileValue, weight: 1 });
}

/** Lone surrogates cannot be percent-encoded as UTF-8: they go as U+FFFD (raw invalid UTF-8 is in rawPathHostile). */
const wellFormed = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
const encode = (s: string) => encodeURIComponent(wellFormed(s));

/** A path parameter as sent (raw, already escaped) */
const rawPathHostile = fc.constantFrom(
  '..',
  '.',
  '%2e%2e',
  '%00',
  '%',
  '%zz',
  '%c0%ae',
  '%ED%A0%80',
  '%FF',
  '%2F',
  'a%2Fb',
  ';',
  '%0d%0a',
  'a'.repeat(3000),
  '%E2%80%AE',
  '%1B%5D52%3Bc%3BZWNobw%3D%3D%07',
);

const validPathParameter = (name: string, schema: JsonSchema | undefined) => fromSchema(schema ?? { type: 'string' }, name).map((v) => encode(String(v)));
const hostilePathParameter = fc.oneof(
  hostileValue.map((v) => encode(typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null'))),
  rawPathHostile,
);

/** Long polls and streams wait for `timeout` seconds: the fuzz keeps valid waits at 0-1 s. */
const WAIT_PARAMETERS = new Set(['timeout']);

function queryString(spec: OperationSpec): fc.Arbitrary<Array<[string, string]>> {
  const schema = spec.query ? toSchema(spec.query) : { type: 'object', properties: {} };
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const entries = Object.entries(properties).map(([key, s]) =>
    WAIT_PARAMETERS.has(key)
      ? // always given (the defaults wait 30 and 60 s); a hostile value that reads as a number waits 1 s
        fc
          .oneof({ arbitrary: fc.constantFrom('0', '1'), weight: 3 }, { arbitrary: hostileValue.map((v) => (Number.isFinite(Number(v)) ? '1' : String(v))), weight: 1 })
          .map((value): Array<[string, string]> => [[key, value]])
      : fc
          .option(fc.oneof({ arbitrary: fromSchema(s, key).map(String), weight: 3 }, { arbitrary: hostileValue.map((v) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''))), weight: 1 }), {
            nil: undefined,
            freq: 2,
          })
          .map((value): Array<[string, string]> => (value === undefined ? [] : [[key, value]])),
  );
  const extra = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...Object.keys(properties), '__proto__', 'constructor'), fc.string({ maxLength: 6 })), fc.string({ maxLength: 20 })), { maxLength: 2 });
  return fc.tuple(fc.tuple(...entries), extra, fc.boolean()).map(([parts, more, duplicate]) => {
    const pairs = [...parts.flat(), ...more];
    if (duplicate && pairs.length > 0) pairs.push([pairs[0]![0], WAIT_PARAMETERS.has(pairs[0]![0]) ? '0' : pairs[0]![1]]);
    return pairs;
  });
}

// ---------------------------------------------------------------------------------------------
// Requests

type Auth = { kind: 'none' } | { kind: 'cert'; name: string } | { kind: 'bearer'; token: string } | { kind: 'sas'; key: string } | { kind: 'crm'; valid: boolean };

interface FuzzRequest {
  method: Method;
  path: string;
  query: Array<[string, string]>;
  contentType: string | undefined;
  body: string | undefined;
  auth: Auth;
}

const FALSE_BEARERS = ['Bearer ', 'Bearer x.y.z', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'Basic YTpi', `Bearer ${'a'.repeat(9000)}`];

function authArbitrary(op: Operation, fixtures: Fixtures): fc.Arbitrary<Auth> {
  const wrong = fc.oneof(
    fc.constant<Auth>({ kind: 'none' }),
    fc.constantFrom<Auth>(...fixtures.certNames.map((name) => ({ kind: 'cert', name }) as Auth)),
    fc.constantFrom<Auth>(...FALSE_BEARERS.map((token) => ({ kind: 'bearer', token: token.slice('Bearer '.length) }) as Auth)),
    fc.constantFrom<Auth>({ kind: 'sas', key: 'SharedAccessSignature sr=x&sig=y&se=1&skn=listen' }, { kind: 'sas', key: `${fixtures.sasKey}x` }),
  );
  const security = op.spec.security ?? [];
  const legitimate: fc.Arbitrary<Auth>[] = [];
  if (security.includes('mutualTLS')) legitimate.push(fc.constant({ kind: 'cert', name: security.includes('bearer') ? 'operator' : legitimateService(op.service, op.template, op.method) }));
  if (security.includes('bearer')) legitimate.push(fc.constant({ kind: 'bearer', token: fixtures.operatorToken }));
  if (security.includes('sas')) legitimate.push(fc.constant({ kind: 'sas', key: fixtures.sasKey }));
  if (security.includes('crmSignature')) legitimate.push(fc.constant({ kind: 'crm', valid: true }));
  if (legitimate.length === 0) return fc.oneof({ arbitrary: fc.constant<Auth>({ kind: 'none' }), weight: 4 }, { arbitrary: wrong, weight: 1 });
  return fc.oneof(
    { arbitrary: fc.oneof(...legitimate), weight: 4 },
    { arbitrary: wrong, weight: 1 },
    { arbitrary: fc.constant<Auth>({ kind: 'crm', valid: false }), weight: security.includes('crmSignature') ? 1 : 0 },
  );
}

function formEncode(value: unknown, duplicate: boolean): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return encode(typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));
  const pairs: string[] = [];
  for (const [key, member] of Object.entries(value as Record<string, unknown>)) {
    const values = Array.isArray(member) ? member : [member];
    for (const v of values) pairs.push(`${encode(key)}=${encode(typeof v === 'string' ? v : (JSON.stringify(v) ?? ''))}`);
  }
  if (duplicate && pairs.length > 0) pairs.push(pairs[0]!);
  return pairs.join('&');
}

const WRONG_TYPES = ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'application/json', undefined];

function bodyArbitrary(op: Operation): fc.Arbitrary<{ contentType: string | undefined; body: string | undefined }> {
  const spec = op.spec.body;
  if (!spec) {
    return fc.oneof({ arbitrary: fc.constant({ contentType: undefined, body: undefined }), weight: 5 }, { arbitrary: fc.constant({ contentType: 'application/json', body: '{"a":' }), weight: 1 });
  }
  const types = spec.types ?? ['application/json'];
  const value = withHostility(fromSchema(toSchema(spec.schema)));
  const encoded = fc.tuple(value, fc.constantFrom(...types), fc.nat(3)).map(([v, type, one]) => ({
    contentType: type,
    body: type === 'application/json' ? (JSON.stringify(v) ?? 'null') : formEncode(v, one === 0),
  }));
  const mistyped = fc.tuple(value, fc.constantFrom(...WRONG_TYPES)).map(([v, contentType]) => ({ contentType, body: JSON.stringify(v) ?? 'null' }));
  const broken = fc.constantFrom(
    { contentType: types[0], body: '{"a":' },
    { contentType: types[0], body: '' },
    { contentType: types[0], body: `${'['.repeat(20_000)}${']'.repeat(20_000)}` },
    { contentType: types[0], body: `{"pad":"${'x'.repeat(70_000)}"}` },
    { contentType: types[0], body: Array.from({ length: 60 }, (_, i) => `p${i}=1`).join('&') },
    { contentType: types[0], body: '\u0000\u0001\u0002' },
  );
  return fc.oneof({ arbitrary: encoded, weight: 6 }, { arbitrary: mistyped, weight: 1 }, { arbitrary: broken, weight: 1 });
}

function requestArbitrary(op: Operation, fixtures: Fixtures): fc.Arbitrary<FuzzRequest> {
  const pathSchema = op.spec.path ? ((toSchema(op.spec.path).properties ?? {}) as Record<string, JsonSchema>) : {};
  const names = [...op.template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  known = knownByService[op.service];
  // Every parameter valid-shaped, or one of them hostile: the others still lead somewhere real.
  const valid = fc.tuple(...names.map((name) => validPathParameter(name, pathSchema[name])));
  const params =
    names.length === 0
      ? valid
      : fc.oneof(
          { arbitrary: valid, weight: 2 },
          { arbitrary: fc.tuple(valid, fc.nat(names.length - 1), hostilePathParameter).map(([values, i, hostile]) => values.map((v, j) => (j === i ? hostile : v))), weight: 1 },
        );
  return fc.tuple(params, queryString(op.spec), bodyArbitrary(op), authArbitrary(op, fixtures)).map(([values, query, body, auth]) => {
    let path = op.template;
    names.forEach((name, i) => {
      path = path.replace(`{${name}}`, values[i]!);
    });
    return { method: op.method, path, query, ...body, auth };
  });
}

// ---------------------------------------------------------------------------------------------
// The oracle: does the contract accept what was sent?

function decodedParams(op: Operation, path: string): Record<string, string> | undefined {
  const names = [...op.template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const pattern = new RegExp(`^${op.template.replace(/[$.]/g, '\\$&').replace(/\{[^}]+\}/g, '([^/]*)')}$`);
  const match = pattern.exec(path);
  if (!match) return undefined;
  try {
    return Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1]!)]));
  } catch {
    return undefined;
  }
}

/** true or false as the contract decides; undefined when the request is another operation's (`/v1/tenants/` is the list) */
function contractAccepts(op: Operation, request: FuzzRequest): boolean | undefined {
  const params = decodedParams(op, request.path);
  if (!params) return false;
  // Routes match with a trailing slash: an empty last parameter names the collection's own operation.
  if (Object.values(params).some((v) => v === '')) return undefined;
  if (op.spec.path && !op.spec.path.safeParse(params).success) return false;
  const query = parseQueryString(request.query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&'));
  if (op.spec.query && !op.spec.query.safeParse({ ...query }).success) return false;
  const body = op.spec.body;
  if (!body) return true;
  const types = body.types ?? ['application/json'];
  const [type, ...parameters] = (request.contentType ?? '').split(';').map((s) => s.trim().toLowerCase());
  if (!type || !types.includes(type)) return false;
  if (parameters.some((p) => p.startsWith('charset=') && p !== 'charset=utf-8')) return false;
  let value: unknown;
  try {
    value = type === 'application/json' ? JSON.parse(request.body ?? '') : { ...parseQueryString(request.body ?? '') };
  } catch {
    return false;
  }
  return body.schema.safeParse(value).success;
}

// ---------------------------------------------------------------------------------------------
// Sending

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  ms: number;
}

interface Fixtures {
  certNames: string[];
  operatorToken: string;
  sasKey: string;
}

let suite: Suite;
let clamd: ClamdServer;
let fixtures: Fixtures;
/** statuses answered per operation, printed with KEYWAY_FUZZ_STATS=1 to see how deep the fuzz gets */
const statuses = new Map<string, Map<number, number>>();
const agents = new Map<string, Agent>();

function agentFor(auth: Auth): Agent {
  const name = auth.kind === 'cert' ? auth.name : '';
  let agent = agents.get(name);
  if (!agent) {
    const cert = name ? suite.pki.certs[name] : undefined;
    agent = new Agent({ ca: suite.pki.ca.certPem, cert: cert?.certPem, key: cert?.keyPem, keepAlive: true, maxSockets: 4 });
    agents.set(name, agent);
  }
  return agent;
}

function send(op: Operation, request: FuzzRequest, boundMs: number): Promise<Answer> {
  const url = new URL(suite.urls[op.service]);
  const query = request.query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
  const headers: Record<string, string> = {};
  if (request.contentType !== undefined) headers['content-type'] = request.contentType;
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  if (body) headers['content-length'] = String(body.length);
  const { auth } = request;
  if (auth.kind === 'bearer') headers.authorization = `Bearer ${auth.token}`;
  if (auth.kind === 'sas') headers.authorization = auth.key;
  if (auth.kind === 'crm') {
    const timestamp = String(Math.floor(Date.now() / 1000));
    headers[CRM_HEADERS.timestamp] = timestamp;
    headers[CRM_HEADERS.signature] = auth.valid ? crmSignatureHeader(CRM_SECRET, timestamp, '', Buffer.from(request.body ?? '')) : `v2=${'0'.repeat(64)}`;
  }
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: url.hostname, port: url.port, method: request.method.toUpperCase(), path: `${request.path}${query ? `?${query}` : ''}`, headers, agent: agentFor(auth), servername: 'localhost' },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), ms: Date.now() - started }));
        res.on('error', reject);
      },
    );
    req.setTimeout(boundMs, () => req.destroy(new Error(`no answer within ${boundMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The longest the operation may legitimately wait: its `timeout` query parameter as the contract reads it. */
function waitOf(op: Operation, request: FuzzRequest): number {
  if (!op.spec.query) return 0;
  const parsed = op.spec.query.safeParse({ ...parseQueryString(request.query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&')) });
  const timeout = parsed.success ? (parsed.data as { timeout?: unknown }).timeout : undefined;
  return typeof timeout === 'number' ? timeout * 1000 : 0;
}

const isErrorBody = (text: string) => {
  try {
    const body = JSON.parse(text) as unknown;
    return z.object({ error: z.string().min(1), error_description: z.string().optional() }).safeParse(body).success;
  } catch {
    return false;
  }
};

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  // the releases service is ready only while its scanner answers
  clamd = await startClamdServer();
  suite = await startSuite({ redisUrl: REDIS_URL, crmWebhookSecret: CRM_SECRET, releases: { clamdAddress: clamd.address, clamdStreamMaxLength: '64M' } });
  const op = await provisionOperator(suite);
  const session = await operatorSession(suite, op.email);
  // A tenant per service, so what one service's fuzz suspends, rotates or deletes leaves the others' fixtures.
  const tenants = {} as Record<ServiceName, Awaited<ReturnType<typeof provisionTenant>>>;
  for (const service of Object.keys(SERVICE_PATHS) as ServiceName[]) tenants[service] = await provisionTenant(suite, { feeds: ['edr-events', 'dns-logs'] });
  const feed = tenants.topic;
  const tier = `tier-${randomUUID().slice(0, 6)}`;
  await suite.operator.putTier(tier, { name: 'Fuzz tier', feeds: ['edr-events'] });
  await suite.operator.createSubscription(feed.tenant, feed.feed, 'siem');
  const login = await suite.pas.password(feed.email, PASSWORD);
  const sas = await suite.pac.sas({ refresh_token: login.refresh_token, rights: 'listen-send' });
  await suite.topic.publish(sas.sas_key, makeBatch(feed.tenant, feed.feed, 1));
  fixtures = { certNames: Object.keys(suite.pki.certs), operatorToken: session.tokens.access_token, sasKey: sas.sas_key };
  // OpenSSH public key lines: one the IdP's tenant user registered (as a JWK), so its ssh-key check can answer yes, and one nobody did
  const registered = generateKeyPairSync('ed25519').publicKey;
  await suite.operator.registerKey(tenants.idp.tenant, tenants.idp.user.id, 'fuzz-ssh', registered.export({ format: 'jwk' }));
  const publicKeys = [publicKeyLine(publicKeyFromKeyObject(registered), 'fuzz'), publicKeyLine(publicKeyFromKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey))];
  const knownFor = async (service: ServiceName): Promise<Record<string, unknown[]>> => {
    const t = tenants[service];
    // throwaway sessions: the token endpoint, revocation and PAC may spend and revoke them
    const spare = await suite.pas.password(t.email, PASSWORD);
    return {
      tenant: [t.tenant],
      topic: [t.feed],
      feed: [t.feed, 'dns-logs'],
      feeds: [[t.feed]],
      subscription: ['default', 'siem'],
      name: ['siem'],
      user: [t.user.id],
      sub: [t.user.id],
      tier: [tier],
      email: [t.email],
      username: [t.email, 'not-an-email', 'admin'],
      password: [PASSWORD],
      refresh_token: [spare.refresh_token],
      token: [spare.access_token, spare.refresh_token],
      grant_type: ['password', 'refresh_token', 'client_credentials'],
      rights: ['listen', 'send', 'listen-send'],
      resource: [`${suite.urls.topic}/tenants/${t.tenant}/topics/${t.feed}`],
      role: ['full-control', 'read-only'],
      key: ['primary', 'secondary'],
      // the registered browser client, so the authorization endpoint gets past its client check
      client_id: [RELEASES_CLIENT.client_id],
      redirect_uri: [RELEASES_CLIENT.redirect_uri],
      product: ['edr', 'edr-agent'],
      version: ['1.0.0', '2.1.0-rc.1'],
      file: ['edr-1.0.0.tar.gz'],
      public_key: publicKeys,
    };
  };
  knownByService = {
    idp: await knownFor('idp'),
    entitlement: await knownFor('entitlement'),
    pas: await knownFor('pas'),
    pac: await knownFor('pac'),
    topic: await knownFor('topic'),
    audit: await knownFor('audit'),
    releases: await knownFor('releases'),
  };
}, 120_000);

afterAll(async () => {
  if (process.env.KEYWAY_FUZZ_STATS) for (const [name, counts] of statuses) process.stdout.write(`${name}: ${JSON.stringify(Object.fromEntries(counts))}\n`);
  for (const agent of agents.values()) agent.destroy();
  await suite?.close();
  await clamd?.stop();
});

describe('issue 9: the endpoint fuzz covers every documented operation', () => {
  it('fuzzes exactly the operations of the OpenAPI documents', () => {
    const documented = (Object.keys(DOCUMENTS) as ServiceName[]).flatMap((service) =>
      Object.entries(DOCUMENTS[service].paths).flatMap(([template, methods]) => Object.keys(methods).map((method) => `${service} ${method.toUpperCase()} ${template}`)),
    );
    expect(operations.map((op) => `${op.service} ${op.method.toUpperCase()} ${op.template}`).sort()).toEqual(documented.sort());
  });
});

describe('issue 9: fuzz of every endpoint: no 500, no hang, nothing the contract refuses', () => {
  it.each(operations.map((op) => [`${op.service} ${op.method.toUpperCase()} ${op.template}`, op] as const))(
    '%s',
    async (name, op) => {
      await fc.assert(
        fc.asyncProperty(requestArbitrary(op, fixtures), async (request) => {
          const bound = waitOf(op, request) + REQUEST_BOUND_MS;
          const answer = await send(op, request, bound);
          const counts = statuses.get(name) ?? new Map<number, number>();
          statuses.set(name, counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1));
          const reachedApp = answer.headers['x-request-id'] !== undefined;
          const verdict = {
            status: answer.status,
            tooSlow: answer.ms > bound,
            // a HEAD answer has no content (RFC 9110 §9.3.2): its error body is the GET's, not sent
            errorBody: answer.status >= 400 && reachedApp && op.method !== 'head' ? isErrorBody(answer.text) : true,
            acceptedWhatContractRefuses: answer.status >= 200 && answer.status < 300 && contractAccepts(op, request) === false,
          };
          if (verdict.status >= 500 || verdict.tooSlow || !verdict.errorBody || verdict.acceptedWhatContractRefuses) {
            throw new Error(`${request.method.toUpperCase()} ${request.path} → ${JSON.stringify(verdict)} ${answer.text.slice(0, 300)}`);
          }
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true },
      );
    },
    120_000,
  );
});

describe('issue 9: what the fuzz found, pinned', () => {
  const post = (service: ServiceName, path: string, body: string, contentType: string, auth: Auth = { kind: 'none' }) =>
    send({ service, template: path, method: 'post', spec: { summary: '', responses: {} } }, { method: 'post', path, query: [], contentType, body, auth }, REQUEST_BOUND_MS);

  it('a JSON body declared in another charset than UTF-8 is 415, also where the route reads the raw bytes (CRM webhook)', async () => {
    const body = JSON.stringify({ id: `evt-${randomUUID()}`, customer: { id: 'Cust_LATIN1', name: 'Latin' }, contract: { status: 'active', tier: 'basic', contacts: [] } });
    const answer = await post('entitlement', '/v1/crm/webhook', body, 'application/json; charset=latin1', { kind: 'crm', valid: true });
    expect(answer.status).toBe(415);
    expect(JSON.parse(answer.text)).toMatchObject({ error: 'unsupported_media_type' });
    const utf8 = await post('entitlement', '/v1/authorize', '{}', 'application/json; charset=UTF-8', { kind: 'cert', name: 'pas' });
    expect(utf8.status).toBe(400);
  });

  it('RFC 7009 §2.1: an unknown token_type_hint is ignored, as the contract now says', async () => {
    const answer = await post('pas', '/oauth2/revoke', 'token=not-a-token&token_type_hint=..', 'application/x-www-form-urlencoded');
    expect(answer.status).toBe(200);
    expect(pasPaths['/oauth2/revoke']!.post!.body!.schema.safeParse({ token: 'not-a-token', token_type_hint: '..' }).success).toBe(true);
  });
});
