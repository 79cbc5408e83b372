import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Thrown by parseConfig; main.ts turns it into a readable message and exit code 78 (EX_CONFIG). */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
  }
}

/**
 * Parses `env` with `schema`. Every key X of the schema may instead be given as X_FILE=<path> (the
 * file's content, one trailing newline stripped), as the Postgres and Keycloak images do, so that
 * passwords and URLs holding them come from mounted secrets rather than the environment. A key whose
 * own name ends in _FILE is a path already and is not doubled.
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): z.output<S> {
  const { values, fromFile } = withFileValues(Object.keys(schemaShape(schema)), env);
  const result = schema.safeParse(values);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => {
        const key = i.path.join('.');
        return `${key || '(root)'}${fromFile.has(key) ? ` (from ${key}_FILE)` : ''}: ${i.message}`;
      }),
    );
  }
  return result.data;
}

/** The fields of an object schema, through refinements and transforms (none for a schema of another kind). */
export function schemaShape(schema: z.ZodType): Record<string, z.ZodType> {
  if (schema instanceof z.ZodObject) return schema.shape as Record<string, z.ZodType>;
  if (schema instanceof z.ZodPipe) return schemaShape(schema.in as z.ZodType);
  return {};
}

/**
 * The X_FILE key that may give X instead, or none: a key that names a path already (TLS_CERT_FILE),
 * or whose X_FILE is a setting of its own (the importer's SINK and SINK_FILE).
 */
export function fileFormOf(keys: readonly string[], key: string): string | undefined {
  const fileKey = `${key}_FILE`;
  return key.endsWith('_FILE') || keys.includes(fileKey) ? undefined : fileKey;
}

/** One trailing newline (as `echo` and editors leave it) is not part of the secret. */
const stripOneNewline = (text: string) => text.replace(/\r?\n$/, '');

/**
 * `env` with each X_FILE of `keys` read into X. Both set, or a file that cannot be read, is a
 * ConfigError naming the key or the path, never the value.
 */
function withFileValues(keys: string[], env: Record<string, string | undefined>): { values: Record<string, string | undefined>; fromFile: Set<string> } {
  const values = { ...env };
  const fromFile = new Set<string>();
  const issues: string[] = [];
  for (const key of keys) {
    const fileKey = fileFormOf(keys, key);
    const path = fileKey === undefined ? undefined : env[fileKey];
    if (path === undefined) continue;
    if (env[key] !== undefined) {
      issues.push(`${key}: set both ${key} and ${key}_FILE; set one`);
      continue;
    }
    try {
      values[key] = stripOneNewline(readFileSync(path, 'utf8'));
      fromFile.add(key);
    } catch (err) {
      issues.push(`${key}_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return { values, fromFile };
}

/**
 * One setting outside a config schema (the CLI's): `key` from the environment or from the file its
 * `key`_FILE names, as parseConfig reads them. Throws ConfigError.
 */
export function envValue(env: Record<string, string | undefined>, key: string): string | undefined {
  return withFileValues([key], env).values[key];
}
