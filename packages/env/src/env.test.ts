import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, envValue, parseConfig } from './index.ts';

describe('X_FILE: a setting from a file', () => {
  const Env = z.object({ DATABASE_URL: z.string().url().optional(), TLS_CERT_FILE: z.string().optional(), SINK: z.string().optional(), SINK_FILE: z.string().optional() });
  const dir = mkdtempSync(join(tmpdir(), 'keyway-config-'));
  const secret = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  const refusal = (env: Record<string, string>) => {
    try {
      parseConfig(Env, env);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('accepted');
  };

  it('reads X from the file X_FILE names, one trailing newline stripped', () => {
    const url = 'postgres://keyway_pas:s3cret-pw@db:5432/keyway';
    expect(parseConfig(Env, { DATABASE_URL_FILE: secret('lf', `${url}\n`) }).DATABASE_URL).toBe(url);
    expect(parseConfig(Env, { DATABASE_URL_FILE: secret('crlf', `${url}\r\n`) }).DATABASE_URL).toBe(url);
    expect(parseConfig(Env, { DATABASE_URL_FILE: secret('bare', url) }).DATABASE_URL).toBe(url);
    // only one: a value that ends in a blank line keeps it, as the file says
    expect(parseConfig(z.object({ TOKEN: z.string() }), { TOKEN_FILE: secret('two', 'abc\n\n') }).TOKEN).toBe('abc\n');
  });

  it('works through refinements and transforms of the schema', () => {
    const Refined = Env.refine(() => true).transform((env) => ({ url: env.DATABASE_URL }));
    expect(parseConfig(Refined, { DATABASE_URL_FILE: secret('refined', 'postgres://u:p@db/k\n') })).toEqual({ url: 'postgres://u:p@db/k' });
  });

  it('does not double a key that names a path already, nor read X_FILE when it is a setting of its own', () => {
    const path = secret('cert', 'not read');
    expect(parseConfig(Env, { TLS_CERT_FILE: path })).toEqual({ TLS_CERT_FILE: path });
    // TLS_CERT_FILE_FILE is no setting: ignored like any unknown variable
    expect(parseConfig(Env, { TLS_CERT_FILE_FILE: '/nonexistent' })).toEqual({});
    expect(parseConfig(Env, { SINK: 'file', SINK_FILE: '/var/lib/keyway/out.jsonl' })).toEqual({ SINK: 'file', SINK_FILE: '/var/lib/keyway/out.jsonl' });
  });

  it('refuses X and X_FILE together, naming the key and never the value', () => {
    const err = refusal({ DATABASE_URL: 'postgres://u:env-secret@db/k', DATABASE_URL_FILE: secret('both', 'postgres://u:file-secret@db/k') });
    expect(err.issues).toEqual(['DATABASE_URL: set both DATABASE_URL and DATABASE_URL_FILE; set one']);
    expect(err.message).not.toMatch(/env-secret|file-secret/);
  });

  it('refuses a file that cannot be read, naming the path', () => {
    const missing = join(dir, 'missing');
    expect(refusal({ DATABASE_URL_FILE: missing }).issues).toEqual([`DATABASE_URL_FILE: cannot read ${missing} (ENOENT)`]);
    expect(refusal({ DATABASE_URL_FILE: dir }).issues).toEqual([`DATABASE_URL_FILE: cannot read ${dir} (EISDIR)`]);
  });

  it('says a bad value came from the file, without echoing it', () => {
    const err = refusal({ DATABASE_URL_FILE: secret('bad', 'not a url s3cret\n') });
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatch(/^DATABASE_URL \(from DATABASE_URL_FILE\): /);
    expect(err.message).not.toContain('s3cret');
  });

  it('envValue reads one setting outside a schema the same way', () => {
    expect(envValue({ KEYWAY_TOKEN_FILE: secret('token', 'tok\n') }, 'KEYWAY_TOKEN')).toBe('tok');
    expect(envValue({ KEYWAY_TOKEN: 'tok' }, 'KEYWAY_TOKEN')).toBe('tok');
    expect(envValue({}, 'KEYWAY_TOKEN')).toBeUndefined();
    expect(() => envValue({ KEYWAY_TOKEN: 'a', KEYWAY_TOKEN_FILE: secret('token2', 'b') }, 'KEYWAY_TOKEN')).toThrow(ConfigError);
  });
});
