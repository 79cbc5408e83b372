import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, configFields, envValue, parseConfig, sharedConfig } from './config.ts';

const Env = z.object({ AMQP_URL: configFields.amqpUrl });

describe('AMQP_URL', () => {
  it('takes one node or the nodes of a cluster separated by commas', () => {
    expect(parseConfig(Env, { AMQP_URL: 'amqp://u:p@127.0.0.1:5672' }).AMQP_URL).toBe('amqp://u:p@127.0.0.1:5672');
    const cluster = 'amqp://u:p@rabbit-1:5672/keyway, amqps://u:p@rabbit-2:5671/keyway,amqp://u:p@rabbit-3';
    expect(parseConfig(Env, { AMQP_URL: cluster }).AMQP_URL).toBe(cluster);
    expect(parseConfig(Env, {}).AMQP_URL).toBeUndefined();
  });

  it.each(['http://u:secret-pw@rabbit-1:5672', 'amqp://u:secret-pw@rabbit-1:5672,rabbit-2:5672', ' , ', ''])('refuses %j without echoing the value', (value) => {
    let refused: unknown;
    try {
      parseConfig(Env, { AMQP_URL: value });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toContain('AMQP_URL');
    expect((refused as Error).message).not.toContain('secret-pw');
  });
});

describe('TRUST_DOMAIN and TLS_RELOAD_SEC', () => {
  const Tls = z.object({ TRUST_DOMAIN: sharedConfig.TRUST_DOMAIN, TLS_RELOAD_SEC: sharedConfig.TLS_RELOAD_SEC });

  it('default to keyway and 30 s; take a SPIFFE trust domain', () => {
    expect(parseConfig(Tls, {})).toEqual({ TRUST_DOMAIN: 'keyway', TLS_RELOAD_SEC: 30 });
    expect(parseConfig(Tls, { TRUST_DOMAIN: 'prod.example-1', TLS_RELOAD_SEC: '5' })).toEqual({ TRUST_DOMAIN: 'prod.example-1', TLS_RELOAD_SEC: 5 });
  });

  it.each([{ TRUST_DOMAIN: 'Keyway' }, { TRUST_DOMAIN: 'keyway/pas' }, { TRUST_DOMAIN: 'spiffe://keyway' }, { TRUST_DOMAIN: '' }, { TLS_RELOAD_SEC: '0' }])('refuses %j', (env) => {
    expect(() => parseConfig(Tls, env)).toThrow(ConfigError);
  });
});

describe('X_FILE: a setting from a file', () => {
  const Env = z.object({ DATABASE_URL: configFields.optionalUrl, TLS_CERT_FILE: z.string().optional(), SINK: z.string().optional(), SINK_FILE: z.string().optional() });
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

describe('SHUTDOWN_DELAY_SEC and SHUTDOWN_DRAIN_SEC', () => {
  const Shutdown = z.object({ SHUTDOWN_DELAY_SEC: sharedConfig.SHUTDOWN_DELAY_SEC, SHUTDOWN_DRAIN_SEC: sharedConfig.SHUTDOWN_DRAIN_SEC });

  it('default to no delay and 20 s of drain', () => {
    expect(parseConfig(Shutdown, {})).toEqual({ SHUTDOWN_DELAY_SEC: 0, SHUTDOWN_DRAIN_SEC: 20 });
    expect(parseConfig(Shutdown, { SHUTDOWN_DELAY_SEC: '5', SHUTDOWN_DRAIN_SEC: '0' })).toEqual({ SHUTDOWN_DELAY_SEC: 5, SHUTDOWN_DRAIN_SEC: 0 });
  });

  it.each([{ SHUTDOWN_DELAY_SEC: '-1' }, { SHUTDOWN_DRAIN_SEC: 'soon' }, { SHUTDOWN_DRAIN_SEC: '601' }, { SHUTDOWN_DELAY_SEC: '1.5' }])('refuses %j', (env) => {
    expect(() => parseConfig(Shutdown, env)).toThrow(ConfigError);
  });
});
