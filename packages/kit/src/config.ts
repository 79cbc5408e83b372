import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Thrown by parseConfig; main.ts turns it into a readable message and exit code 78 (EX_CONFIG). */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
  }
}

export function parseConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): z.output<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  return result.data;
}

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
const logLevel = z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info');

/** Knobs every service shares. Files hold PEM; the dev launcher generates them under .keyway/pki. */
export const sharedConfig = {
  HOST: z.string().default('127.0.0.1').describe('address to listen on'),
  TLS_CERT_FILE: z.string().describe('PEM certificate of this service (also its mTLS client certificate)'),
  TLS_KEY_FILE: z.string().describe('PEM private key of this service'),
  TLS_CA_FILE: z.string().describe('PEM CA that signs every service certificate'),
  REDIS_URL: optionalUrl.describe('redis://host:port; unset = embedded in-memory store'),
  STORE_PREFIX: z.string().regex(/^[a-z0-9:_-]{1,64}$/).default('keyway').describe('root of this deployment’s store keys; each service adds its own name'),
  LOG_LEVEL: logLevel.describe('debug | info | warn | error | silent'),
};
export const configFields = { port, optionalUrl, logLevel };

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  caPem: string;
}

export function readTls(config: { TLS_CERT_FILE: string; TLS_KEY_FILE: string; TLS_CA_FILE: string }): TlsMaterial {
  return {
    certPem: readFileSync(config.TLS_CERT_FILE, 'utf8'),
    keyPem: readFileSync(config.TLS_KEY_FILE, 'utf8'),
    caPem: readFileSync(config.TLS_CA_FILE, 'utf8'),
  };
}

/** Lifetimes are given in seconds in configuration ("1200", "14d" is not accepted: be explicit). */
export const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);
