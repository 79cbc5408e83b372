import { amqpUrls } from '@keyway/broker';
import { DEFAULT_TRUST_DOMAIN, TRUST_DOMAIN, watchTls, type WatchedTls } from '@keyway/tls';
import { z } from 'zod';

// the env/file-value rules live in @keyway/env, which @keyway/telemetry shares without loading kit
export { ConfigError, envValue, fileFormOf, parseConfig } from '@keyway/env';
import { ConfigError, parseConfig } from '@keyway/env';

/** For main.ts only: parse or print every bad key and exit. */
export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): z.output<S> {
  try {
    return parseConfig(schema, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
}

const port = z.coerce.number().int().min(0).max(65535);
const optionalUrl = z.string().url().optional();
const isAmqpUrl = (url: string): boolean => {
  try {
    return ['amqp:', 'amqps:'].includes(new URL(url).protocol);
  } catch {
    return false;
  }
};
/** AMQP_URL: one node, or the nodes of one cluster separated by commas (the broker tries them in turn); the message never echoes the value, which holds a password */
const amqpUrl = z
  .string()
  .refine((value) => amqpUrls(value).length > 0 && amqpUrls(value).every(isAmqpUrl), 'expected amqp(s)://user:pass@host:port/vhost, or several such URLs (nodes of one cluster) separated by commas')
  .optional();
const logLevel = z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info');

/** Infrastructure keys a production deployment must set: each has a stand-in that only development may use. */
export type InfrastructureKey = 'REDIS_URL' | 'AMQP_URL' | 'DATABASE_URL' | 'KEYWAY_KEK_FILE';
const DEVELOPMENT_STAND_IN: Record<InfrastructureKey, string> = {
  REDIS_URL: 'an embedded in-memory stand-in private to this process is used',
  AMQP_URL: 'an embedded in-memory stand-in private to this process is used',
  DATABASE_URL: 'an embedded PostgreSQL (PGlite) private to this process is used',
  KEYWAY_KEK_FILE: 'a development keyring is made next to TLS_CA_FILE',
};

/** Knobs every service shares. Files hold PEM; the dev launcher generates them under .keyway/pki. */
export const sharedConfig = {
  KEYWAY_ENV: z
    .enum(['production', 'development'])
    .default('production')
    .describe('production: DATABASE_URL, REDIS_URL (and AMQP_URL where a service uses RabbitMQ) must be set; development: unset ones run on embedded stand-ins private to the process, with a warning'),
  HOST: z.string().default('127.0.0.1').describe('address to listen on'),
  TLS_CERT_FILE: z.string().describe('PEM certificate of this service (also its mTLS client certificate), naming spiffe://<TRUST_DOMAIN>/<service> as its URI SAN; re-read while running'),
  TLS_KEY_FILE: z.string().describe('PEM private key of this service; re-read with the certificate'),
  TLS_CA_FILE: z.string().describe('PEM CA bundle that signs the service certificates (old and new CA together during a CA rotation); re-read while running'),
  TRUST_DOMAIN: z
    .string()
    .regex(TRUST_DOMAIN, 'a SPIFFE trust domain: lowercase letters, digits, ".", "-", "_"')
    .default(DEFAULT_TRUST_DOMAIN)
    .describe('SPIFFE trust domain: a peer certificate is service <name> only when its one URI SAN is spiffe://<TRUST_DOMAIN>/<name> (the CN is not read)'),
  TLS_RELOAD_SEC: z.coerce
    .number()
    .int()
    .positive()
    .max(3600)
    .default(30)
    .describe('how often the TLS files are read again; a renewed certificate or CA bundle is used for new connections within this many seconds, without a restart'),
  REDIS_URL: optionalUrl.describe('redis://user:password@host:port, the service’s own ACL user: hot, expiring state only; unset (KEYWAY_ENV=development only) = embedded in-memory store'),
  DATABASE_URL: optionalUrl.describe(
    'postgres://keyway_<service>:password@host:port/database, the service’s own role: the system of record (tenants, users, credentials, keys, audit trail); unset (KEYWAY_ENV=development only) = embedded PostgreSQL (PGlite) private to this process',
  ),
  DATABASE_DIR: z.string().optional().describe('where the embedded PostgreSQL keeps its files when DATABASE_URL is unset (unset: in memory, lost on exit)'),
  STORE_PREFIX: z
    .string()
    .regex(/^[a-z0-9:_-]{1,64}$/)
    .default('keyway')
    .describe('root of this deployment’s store keys; each service adds its own name'),
  LOG_LEVEL: logLevel.describe('debug | info | warn | error | silent'),
  TLS_HANDSHAKE_TIMEOUT_SEC: z.coerce.number().int().positive().max(120).default(10).describe('a TLS handshake not finished after this many seconds is cut'),
  HTTP_HEADERS_TIMEOUT_SEC: z.coerce
    .number()
    .int()
    .positive()
    .max(300)
    .default(15)
    .describe('seconds a connection has, after its handshake or its previous answer, to send a whole request header; a connection that sends no request is closed after it'),
  HTTP_REQUEST_TIMEOUT_SEC: z.coerce
    .number()
    .int()
    .positive()
    .max(3600)
    .default(30)
    .describe('seconds to receive a whole request, body included (the answer is not bounded by it: long polls and streams outlast it)'),
  HTTP_KEEP_ALIVE_TIMEOUT_SEC: z.coerce.number().int().positive().max(3600).default(65).describe('an idle keep-alive connection is closed after this many seconds'),
  SHUTDOWN_DELAY_SEC: z.coerce
    .number()
    .int()
    .min(0)
    .max(300)
    .default(0)
    .describe(
      'after SIGTERM, seconds /readyz answers 503 while everything else is served as before, before the drain starts: time for a load balancer (Kubernetes endpoints) to take the instance out of rotation',
    ),
  SHUTDOWN_DRAIN_SEC: z.coerce
    .number()
    .int()
    .min(0)
    .max(600)
    .default(20)
    .describe(
      'after SIGTERM (and SHUTDOWN_DELAY_SEC), seconds requests in flight get to finish while long polls and streams end with what they have; then the listener closes and what is still open is cut',
    ),
  MAX_CONNECTIONS_PER_SOURCE: z.coerce
    .number()
    .int()
    .min(0)
    .default(256)
    .describe('open connections one remote address may hold; further ones are closed at once (0: no cap; behind a proxy every client shares its address)'),
};
export const configFields = { port, optionalUrl, amqpUrl, logLevel };

/**
 * The infrastructure `keys` of a schema are required unless KEYWAY_ENV=development, so a production
 * process never falls back to a store or broker nobody else sees. Checked even when other keys are
 * bad (`when`), so a bad configuration is reported whole.
 */
export function requiredInProduction<S extends z.ZodType<Record<string, unknown>>>(schema: S, ...keys: InfrastructureKey[]): S {
  return keys.reduce(
    (refined, key) =>
      refined.refine((env) => env.KEYWAY_ENV === 'development' || env[key] !== undefined, {
        path: [key],
        message: `required unless KEYWAY_ENV=development (then ${DEVELOPMENT_STAND_IN[key]})`,
        when: () => true,
      }),
    schema,
  );
}

/** Knob of a service that keeps keys sealed at rest (@keyway/seal): PAS's signing keys, PAC's SAS root keys. */
export const kekConfig = {
  KEYWAY_KEK_FILE: z
    .string()
    .min(1)
    .optional()
    .describe(
      'keyring file (JSON, mode 0600: several KEKs by id, one "current") whose key-encryption keys seal signing and SAS root keys at rest; unset (KEYWAY_ENV=development only) = kek.json next to TLS_CA_FILE, made when absent',
    ),
};

/** Knob of an admin API with destructive actions (RFC 9470 step-up: kit requireRecentAuthentication). */
export const stepUpConfig = {
  STEP_UP_MAX_AGE_SEC: z.coerce
    .number()
    .int()
    .positive()
    .max(86_400)
    .default(300)
    .describe(
      'destructive admin actions (tenant delete, signing-key and SAS key rotation) need an operator login with a second factor at most this many seconds old (auth_time); else 401 insufficient_user_authentication',
    ),
};

/** Knobs of a service that verifies tokens against PAS's published keys (remoteKeySet in @keyway/tokens). */
export const pasKeysConfig = {
  PAS_JWKS_COOLDOWN_SEC: z.coerce.number().int().positive().default(30).describe('an unknown "kid" reloads PAS\'s JWKS at most this often (a rotated key is picked up within it)'),
  PAS_JWKS_MAX_AGE_SEC: z.coerce
    .number()
    .int()
    .positive()
    .default(60)
    .describe("PAS's JWKS is reloaded once older than this (a withdrawn key stops verifying within it; PAS answers it with this max-age)"),
};

/** remoteKeySet's cache options from pasKeysConfig. */
export const pasKeysCache = (config: { PAS_JWKS_COOLDOWN_SEC: number; PAS_JWKS_MAX_AGE_SEC: number }) => ({
  cooldownMs: config.PAS_JWKS_COOLDOWN_SEC * 1000,
  maxAgeMs: config.PAS_JWKS_MAX_AGE_SEC * 1000,
});

/** Knob of an admin API (other than PAS's) that accepts operator access tokens. */
export const operatorTokenConfig = {
  OPERATOR_TOKEN_CACHE_SEC: z.coerce
    .number()
    .int()
    .min(0)
    .max(60)
    .default(5)
    .describe("how long PAS's introspection answer for an operator access token is reused: a revoked operator session keeps working at most this long (0: ask every time)"),
};

/** How an admin API checks operator access tokens: its own URL in "aud", PAS as issuer, the skew and the introspection cache. */
export const operatorTokenOptions = (config: { PUBLIC_URL: string; PAS_URL: string; CLOCK_TOLERANCE_SEC: number; OPERATOR_TOKEN_CACHE_SEC: number }) => ({
  publicUrl: config.PUBLIC_URL,
  pasIssuer: config.PAS_URL,
  clockToleranceSec: config.CLOCK_TOLERANCE_SEC,
  operatorTokenCacheMs: config.OPERATOR_TOKEN_CACHE_SEC * 1000,
});

type ListenerConfig = {
  TLS_HANDSHAKE_TIMEOUT_SEC: number;
  HTTP_HEADERS_TIMEOUT_SEC: number;
  HTTP_REQUEST_TIMEOUT_SEC: number;
  HTTP_KEEP_ALIVE_TIMEOUT_SEC: number;
  MAX_CONNECTIONS_PER_SOURCE: number;
};

/** The listener's bounds (https.ts) from the shared configuration keys. */
export function listenerLimits(config: ListenerConfig) {
  return {
    handshakeTimeoutMs: config.TLS_HANDSHAKE_TIMEOUT_SEC * 1000,
    headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_SEC * 1000,
    requestTimeoutMs: Math.max(config.HTTP_REQUEST_TIMEOUT_SEC, config.HTTP_HEADERS_TIMEOUT_SEC) * 1000,
    keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_SEC * 1000,
    maxConnectionsPerSource: config.MAX_CONNECTIONS_PER_SOURCE,
  };
}

export type { TlsMaterial, TlsSource } from '@keyway/tls';

export type TlsConfig = { TLS_CERT_FILE: string; TLS_KEY_FILE: string; TLS_CA_FILE: string; TRUST_DOMAIN: string; TLS_RELOAD_SEC: number };

/** This service's TLS material from its files, re-read every TLS_RELOAD_SEC (a failed reload keeps the previous one and logs). */
export function openTls(config: TlsConfig, log?: { info(msg: string, fields?: Record<string, unknown>): void; warn(msg: string, fields?: Record<string, unknown>): void }): WatchedTls {
  return watchTls({ certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE, caFile: config.TLS_CA_FILE }, { trustDomain: config.TRUST_DOMAIN, intervalMs: config.TLS_RELOAD_SEC * 1000, log });
}

/** Lifetimes are given in seconds in configuration ("1200", "14d" is not accepted: be explicit). */
export const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);
