import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { MAX_PREFETCH } from '@keyway/contracts';
import { ConfigError, configFields, fileFormOf, parseConfig } from '@keyway/kit';
import { DEFAULT_PREFETCH, DEFAULT_STREAM_TIMEOUT_SEC, PULL_MODES } from './agent.ts';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES } from './sinks/file.ts';
import { DEFAULT_AUTHORITY_URL } from './sinks/sentinel.ts';
import { SYSLOG_FORMATS } from './sinks/siem-formats.ts';
import { FACILITIES } from './sinks/syslog.ts';

const PASSWORD_LOGIN = ['KEYWAY_USERNAME', 'KEYWAY_PASSWORD'] as const;
const KEY_PAIR_LOGIN = ['KEYWAY_CLIENT_ID', 'KEYWAY_PRIVATE_KEY_FILE', 'KEYWAY_KEY_ID'] as const;

const SINKS = ['file', 'stdout', 'syslog', 'http', 'sentinel', 'elasticsearch'] as const;
/** the keys each sink cannot do without */
const SINK_REQUIRES = {
  file: ['SINK_FILE'],
  stdout: ['STATE_FILE'],
  syslog: ['SYSLOG_URL', 'STATE_FILE'],
  http: ['HEC_URL', 'HEC_TOKEN', 'STATE_FILE'],
  sentinel: ['SENTINEL_TENANT_ID', 'SENTINEL_CLIENT_ID', 'SENTINEL_CLIENT_SECRET', 'SENTINEL_ENDPOINT', 'SENTINEL_DCR_ID', 'SENTINEL_STREAM', 'STATE_FILE'],
  elasticsearch: ['ES_URL', 'ES_INDEX', 'STATE_FILE'],
} as const;
const ES_BASIC = ['ES_USERNAME', 'ES_PASSWORD'] as const;
const SYSLOG_TLS_ONLY = ['SYSLOG_CA_FILE', 'SYSLOG_CERT_FILE', 'SYSLOG_KEY_FILE'] as const;

const facility = z
  .string()
  .default('local0')
  .transform((value, ctx) => {
    const number = /^\d{1,2}$/.test(value) ? Number(value) : Object.hasOwn(FACILITIES, value) ? FACILITIES[value as keyof typeof FACILITIES] : undefined;
    if (number === undefined || number > 23) {
      ctx.addIssue({ code: 'custom', message: 'a facility name (user, daemon, auth, local0 … local7, …) or its number 0-23' });
      return z.NEVER;
    }
    return number;
  });

/** The fields alone, so the cross-field rules below can be written against their parsed types (and `keyway importer run` offers each as a flag). */
export const ImporterFields = z.object({
  PAS_URL: z.string().url().describe('PAS, where the agent logs in'),
  PAC_URL: z.string().url().describe('PAC, where the agent gets SAS keys'),
  TOPIC_URL: z.string().url().describe('the topic service'),
  TLS_CA_FILE: z.string().describe('PEM CA the services’ certificates chain to'),
  KEYWAY_USERNAME: z.string().min(1).optional().describe('the agent user’s email (password login)'),
  KEYWAY_PASSWORD: z.string().min(1).optional().describe('the agent user’s password (password login)'),
  KEYWAY_CLIENT_ID: z.string().min(1).optional().describe('the agent user’s id (passwordless login, RFC 7523 private_key_jwt)'),
  KEYWAY_PRIVATE_KEY_FILE: z.string().min(1).optional().describe('PEM (PKCS#8) EC P-256 or Ed25519 private key whose public key is registered for the user'),
  KEYWAY_KEY_ID: z.string().min(1).optional().describe('the kid the public key was registered under'),
  KEYWAY_SCOPE: z.string().optional().describe('feeds to ask for, e.g. "feed:edr-events"; default: all of the tenant’s'),
  RESOURCE: z.string().url().optional().describe('topic URI to pull; default: the tenant’s feed'),
  SUBSCRIPTION: z
    .string()
    .regex(/^[a-z0-9-]{1,63}$/)
    .default('default')
    .describe('subscription to receive from'),
  REPLAY_FROM: z
    .string()
    .datetime({ offset: true, message: 'must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z' })
    .optional()
    .describe(
      'ISO time: once, at the first start with this value, the feed’s batches retained since then are replayed into SUBSCRIPTION and written again (remembered in STATE_FILE + ".replay"; a new value replays again)',
    ),
  SINK: z
    .enum(SINKS)
    .default('file')
    .describe(
      'where batches go: file (rotating JSON lines), stdout, syslog (RFC 5424 over TCP/TLS), http (Splunk HEC), sentinel (Azure Monitor Logs Ingestion API) or elasticsearch (Elasticsearch / OpenSearch _bulk)',
    ),
  SINK_FILE: z.string().min(1).optional().describe('SINK=file: the JSON-lines file batches are written to'),
  SINK_FILE_MAX_BYTES: z.coerce.number().int().min(1024).default(DEFAULT_MAX_BYTES).describe('SINK=file: rotate before the file would grow past this many bytes'),
  SINK_FILE_MAX_FILES: z.coerce.number().int().min(1).default(DEFAULT_MAX_FILES).describe('SINK=file: rotated files kept; the oldest beyond this are deleted'),
  SYSLOG_URL: z
    .string()
    .regex(/^(tcp|tls):\/\/[^/?#]+:\d{1,5}$/, 'must be tcp://host:port or tls://host:port')
    .optional()
    .describe('SINK=syslog: tcp://host:port (RFC 6587) or tls://host:port (RFC 5425)'),
  SYSLOG_CA_FILE: z.string().min(1).optional().describe('SINK=syslog over tls://: PEM CA the server certificate chains to; default: Node’s bundled CAs'),
  SYSLOG_CERT_FILE: z.string().min(1).optional().describe('SINK=syslog over tls://: PEM client certificate, for a server that asks for one'),
  SYSLOG_KEY_FILE: z.string().min(1).optional().describe('SINK=syslog over tls://: PEM private key of SYSLOG_CERT_FILE'),
  SYSLOG_FACILITY: facility.describe('SINK=syslog: RFC 5424 facility, a name (local0 … local7, user, daemon, …) or 0-23; default local0'),
  SYSLOG_FORMAT: z
    .enum(SYSLOG_FORMATS)
    .default('rfc5424-json')
    .describe('SINK=syslog: each message’s MSG: rfc5424-json (the record as JSON, keyway fields in structured data; default), cef (ArcSight CEF:0) or leef (QRadar LEEF:2.0)'),
  HEC_URL: z.string().url().startsWith('https://', 'must be https:// (the token must not travel in clear)').optional().describe('SINK=http: Splunk HEC base URL, e.g. https://splunk.example:8088'),
  HEC_TOKEN: z.string().min(1).optional().describe('SINK=http: HEC token (sent as "Authorization: Splunk <token>", never logged)'),
  HEC_CA_FILE: z.string().min(1).optional().describe('SINK=http: PEM CA the collector’s certificate chains to; default: Node’s bundled CAs'),
  HEC_INDEX: z.string().min(1).optional().describe('SINK=http: Splunk index; default: the token’s'),
  SENTINEL_TENANT_ID: z.string().min(1).optional().describe('SINK=sentinel: Entra ID tenant (directory) id of the app registration'),
  SENTINEL_CLIENT_ID: z.string().min(1).optional().describe('SINK=sentinel: the app registration’s client id (it needs Monitoring Metrics Publisher on the DCR)'),
  SENTINEL_CLIENT_SECRET: z.string().min(1).optional().describe('SINK=sentinel: the app’s client secret (sent to Entra ID only, never logged)'),
  SENTINEL_AUTHORITY_URL: z
    .string()
    .url()
    .startsWith('https://', 'must be https:// (the client secret must not travel in clear)')
    .default(DEFAULT_AUTHORITY_URL)
    .describe('SINK=sentinel: Entra ID authority; default https://login.microsoftonline.com (another for a sovereign cloud)'),
  SENTINEL_ENDPOINT: z
    .string()
    .url()
    .startsWith('https://', 'must be https:// (the token must not travel in clear)')
    .optional()
    .describe('SINK=sentinel: data collection endpoint (or the DCR’s logs ingestion endpoint), e.g. https://my-dce.westeurope-1.ingest.monitor.azure.com'),
  SENTINEL_DCR_ID: z.string().min(1).optional().describe('SINK=sentinel: the data collection rule’s immutable id (dcr-…)'),
  SENTINEL_STREAM: z.string().min(1).optional().describe('SINK=sentinel: the DCR’s stream, e.g. Custom-KeywayEvents'),
  SENTINEL_CA_FILE: z
    .string()
    .min(1)
    .optional()
    .describe('SINK=sentinel: PEM CA that both the login (SENTINEL_AUTHORITY_URL) and the ingestion endpoint certificates chain to; default: Node’s bundled CAs'),
  ES_URL: z
    .string()
    .url()
    .startsWith('https://', 'must be https:// (the credentials must not travel in clear)')
    .optional()
    .describe('SINK=elasticsearch: the cluster’s base URL, e.g. https://es.example:9200'),
  ES_API_KEY: z.string().min(1).optional().describe('SINK=elasticsearch: API key (sent as "Authorization: ApiKey <key>", never logged); or ES_USERNAME and ES_PASSWORD'),
  ES_USERNAME: z.string().min(1).optional().describe('SINK=elasticsearch: user for basic authentication (OpenSearch, or Elasticsearch without an API key)'),
  ES_PASSWORD: z.string().min(1).optional().describe('SINK=elasticsearch: password of ES_USERNAME (never logged)'),
  ES_INDEX: z.string().min(1).optional().describe('SINK=elasticsearch: index or data stream the documents are created in'),
  ES_CA_FILE: z.string().min(1).optional().describe('SINK=elasticsearch: PEM CA the cluster’s certificate chains to; default: Node’s bundled CAs'),
  STATE_FILE: z
    .string()
    .min(1)
    .optional()
    .describe('checkpoint of the batch ids already written (drops redeliveries after a restart); default for SINK=file: SINK_FILE + ".checkpoint", required for the other sinks'),
  PULL: z.enum(PULL_MODES).default('stream').describe('stream (one long response, batches written in order while the next arrive) or receive (one long poll and one batch at a time)'),
  PREFETCH: z.coerce.number().int().min(1).max(MAX_PREFETCH).default(DEFAULT_PREFETCH).describe('PULL=stream: batches locked ahead of the sink at once'),
  STREAM_TIMEOUT_SEC: z.coerce.number().int().min(1).max(300).default(DEFAULT_STREAM_TIMEOUT_SEC).describe('PULL=stream: how long each stream stays open before the next is opened'),
  RECEIVE_TIMEOUT_SEC: z.coerce.number().int().min(1).max(60).default(20).describe('PULL=receive: long-poll wait per receive'),
  DPOP: z
    .enum(['on', 'off', 'true', 'false'])
    .default('on')
    .transform((value) => value === 'on' || value === 'true')
    .describe('on (default): the agent proves its key pair (DPoP, RFC 9449) on every call to PAS, PAC and the topic service, so its tokens and SAS keys are bound to it; off: bearer tokens'),
  DPOP_KEY_FILE: z.string().min(1).optional().describe('DPOP=on: the agent’s DPoP private key (PKCS#8 PEM, mode 0600), made on first start; default: dpop-key.pem next to STATE_FILE'),
  FEEDS_FILE: z
    .string()
    .min(1)
    .optional()
    .describe(
      'JSON list of feeds for one agent process, each an object of the per-feed keys above (login, RESOURCE, SUBSCRIPTION, SINK…) over the environment’s; default: the one feed the environment describes',
    ),
  HEALTH_PORT: configFields.port.optional().describe('serve health and lag as JSON on http://127.0.0.1:PORT/health (503 when a feed is unhealthy); default: off'),
  LOG_LEVEL: configFields.logLevel.describe('debug | info | warn | error | silent'),
});
type Fields = z.output<typeof ImporterFields>;

export const ImporterEnv = ImporterFields.superRefine((env, ctx) => {
  requireOneLogin(env, ctx);
  requireSinkKeys(env, ctx);
})
  // Sound once the rules above hold: STATE_FILE is unset only with SINK=file, which has a SINK_FILE.
  .transform((env) => {
    const stateFile = env.STATE_FILE ?? `${env.SINK_FILE}.checkpoint`;
    // the agent's state directory holds its key next to its checkpoint
    return { ...env, STATE_FILE: stateFile, DPOP_KEY_FILE: env.DPOP_KEY_FILE ?? join(dirname(stateFile), 'dpop-key.pem') };
  });
export type ImporterEnv = z.output<typeof ImporterEnv>;

/** Keys every feed of a process shares: an entry of FEEDS_FILE may not set them. */
const PROCESS_WIDE = ['PAS_URL', 'PAC_URL', 'TOPIC_URL', 'TLS_CA_FILE', 'LOG_LEVEL', 'FEEDS_FILE', 'HEALTH_PORT'] as const;
const FIELDS = Object.keys(ImporterFields.shape);
const PER_FEED = FIELDS.filter((key) => !(PROCESS_WIDE as readonly string[]).includes(key));
/** A key and its X_FILE form, if it has one (parseConfig reads the secret from the file). */
const withFileForm = (key: string) => [key, fileFormOf(FIELDS, key) ?? []].flat();
/** An entry of FEEDS_FILE: per-feed keys (or their X_FILE form) only (a typo is refused, not ignored), as strings or numbers like the environment's. */
const FeedEntry = z.strictObject(Object.fromEntries(PER_FEED.flatMap(withFileForm).map((key) => [key, z.union([z.string(), z.number()]).optional()])));
const FeedsFile = z.array(FeedEntry).min(1, 'must list at least one feed');

/**
 * Where JSON.parse stopped, as " at line L, column C" when V8 says (its message itself is not
 * repeated: on Node 20 it quotes the text around the error, which may be a HEC_TOKEN or a password).
 */
function jsonErrorPlace(text: string, err: Error): string {
  const position = /at position (\d+)/.exec(err.message)?.[1];
  if (position === undefined) return '';
  const before = text.slice(0, Number(position)).split('\n');
  return ` at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

/**
 * The feeds one agent process pulls: the environment's one feed, or with FEEDS_FILE one per entry,
 * each the environment with the entry's keys over it (an entry that names a login replaces the
 * environment's login rather than adding to it), parsed and checked like the environment alone.
 * Throws ConfigError.
 */
export function importerFeeds(env: Record<string, string | undefined>): ImporterEnv[] {
  const base = parseConfig(ImporterFields.pick({ FEEDS_FILE: true }), env);
  if (base.FEEDS_FILE === undefined) return [parseConfig(ImporterEnv, env)];
  let text: string;
  try {
    text = readFileSync(base.FEEDS_FILE, 'utf8');
  } catch (err) {
    throw new ConfigError([`FEEDS_FILE: cannot read ${base.FEEDS_FILE} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([`FEEDS_FILE: not valid JSON${jsonErrorPlace(text, err as Error)}`]);
  }
  const parsed = FeedsFile.safeParse(json);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((issue) => `FEEDS_FILE[${issue.path.join('.')}]: ${issue.message}`));
  const entries = parsed.data;
  const logins = new Set<string>([...PASSWORD_LOGIN, ...KEY_PAIR_LOGIN].flatMap(withFileForm));
  const feeds = entries.map((entry, index) => {
    const own = Object.fromEntries(Object.entries(entry).flatMap(([key, value]) => (value === undefined ? [] : [[key, String(value)]])));
    // an entry's HEC_TOKEN replaces the environment's HEC_TOKEN_FILE too, and the other way round
    const replaced = new Set(Object.keys(own).flatMap((key) => (FIELDS.includes(key) ? withFileForm(key) : [key, key.slice(0, -'_FILE'.length)])));
    if (Object.keys(own).some((key) => logins.has(key))) for (const key of logins) replaced.add(key);
    const inherited = Object.fromEntries(Object.entries(env).filter(([key]) => !replaced.has(key)));
    try {
      return parseConfig(ImporterEnv, { ...inherited, ...own });
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(err.issues.map((issue) => `FEEDS_FILE[${index}].${issue}`));
      throw err;
    }
  });
  // Two feeds appending to one checkpoint or one rotating file would corrupt both.
  const clashes = (files: (string | undefined)[]) => files.filter((file, i) => file !== undefined && files.indexOf(file) !== i);
  const issues = [
    ...clashes(feeds.map((feed) => feed.STATE_FILE)).map((file) => `FEEDS_FILE: two feeds share the STATE_FILE ${file}`),
    ...clashes(feeds.map((feed) => (feed.SINK === 'file' ? feed.SINK_FILE : undefined))).map((file) => `FEEDS_FILE: two feeds share the SINK_FILE ${file}`),
  ];
  if (issues.length > 0) throw new ConfigError(issues);
  return feeds;
}

/** Exactly one way to log in, given completely: a password, or a registered key pair. */
function requireOneLogin(env: Fields, ctx: z.RefinementCtx): void {
  const given = (names: readonly (keyof Fields)[]) => names.filter((name) => env[name] !== undefined);
  const password = given(PASSWORD_LOGIN);
  const keyPair = given(KEY_PAIR_LOGIN);
  if (password.length > 0 === keyPair.length > 0) {
    ctx.addIssue({ code: 'custom', message: `set either ${PASSWORD_LOGIN.join(' and ')}, or ${KEY_PAIR_LOGIN.join(', ')}` });
    return;
  }
  const [chosen, names] = password.length > 0 ? [password, PASSWORD_LOGIN] : [keyPair, KEY_PAIR_LOGIN];
  for (const name of names.filter((n) => !chosen.includes(n))) {
    ctx.addIssue({ code: 'custom', path: [name], message: `required with ${chosen.join(', ')}` });
  }
}

/**
 * Each sink's own keys. Sinks other than file have no file to put the checkpoint next to, so they
 * name it: a checkpoint in a default place that a restart might not find would let duplicates through.
 */
function requireSinkKeys(env: Fields, ctx: z.RefinementCtx): void {
  for (const name of SINK_REQUIRES[env.SINK]) {
    if (env[name] === undefined) ctx.addIssue({ code: 'custom', path: [name], message: `required with SINK=${env.SINK}` });
  }
  if (env.SINK === 'file' && env.STATE_FILE !== undefined && env.STATE_FILE === env.SINK_FILE) {
    ctx.addIssue({ code: 'custom', path: ['STATE_FILE'], message: 'must not be SINK_FILE' });
  }
  if (env.SINK === 'syslog') {
    if ((env.SYSLOG_CERT_FILE === undefined) !== (env.SYSLOG_KEY_FILE === undefined)) {
      ctx.addIssue({ code: 'custom', path: [env.SYSLOG_CERT_FILE === undefined ? 'SYSLOG_CERT_FILE' : 'SYSLOG_KEY_FILE'], message: 'SYSLOG_CERT_FILE and SYSLOG_KEY_FILE go together' });
    }
    if (env.SYSLOG_URL?.startsWith('tcp:')) {
      for (const name of SYSLOG_TLS_ONLY.filter((n) => env[n] !== undefined)) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'only with a tls:// SYSLOG_URL' });
      }
    }
  }
  if (env.SINK === 'elasticsearch') {
    const basic = ES_BASIC.filter((name) => env[name] !== undefined);
    if ((env.ES_API_KEY !== undefined) === basic.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['ES_API_KEY'], message: `set either ES_API_KEY, or ${ES_BASIC.join(' and ')}` });
    } else if (basic.length === 1) {
      ctx.addIssue({ code: 'custom', path: [ES_BASIC.find((name) => env[name] === undefined)!], message: `required with ${basic[0]}` });
    }
  }
}
