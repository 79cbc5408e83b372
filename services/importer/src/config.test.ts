import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '@keyway/kit';
import { importerFeeds, ImporterEnv } from './config.ts';

const base = { PAS_URL: 'https://pas.test', PAC_URL: 'https://pac.test', TOPIC_URL: 'https://topic.test', TLS_CA_FILE: 'ca.crt', KEYWAY_USERNAME: 'a@b.c', KEYWAY_PASSWORD: 'pw' };
const issues = (env: Record<string, string>) => {
  try {
    parseConfig(ImporterEnv, { ...base, ...env });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
};

describe('importer sink configuration', () => {
  it('defaults to the file sink with its checkpoint next to it, rotating at 100 MiB and keeping 10 files', () => {
    expect(parseConfig(ImporterEnv, { ...base, SINK_FILE: '/var/lib/keyway/out.jsonl' })).toMatchObject({
      SINK: 'file',
      STATE_FILE: '/var/lib/keyway/out.jsonl.checkpoint',
      SINK_FILE_MAX_BYTES: 104_857_600,
      SINK_FILE_MAX_FILES: 10,
    });
  });

  it('names the keys each sink requires', () => {
    expect(issues({})).toEqual(['SINK_FILE: required with SINK=file']);
    expect(issues({ SINK: 'stdout' })).toEqual(['STATE_FILE: required with SINK=stdout']);
    expect(issues({ SINK: 'syslog' })).toEqual(['SYSLOG_URL: required with SINK=syslog', 'STATE_FILE: required with SINK=syslog']);
    expect(issues({ SINK: 'http', STATE_FILE: '/s' })).toEqual(['HEC_URL: required with SINK=http', 'HEC_TOKEN: required with SINK=http']);
    expect(issues({ SINK: 'file', SINK_FILE: '/x', STATE_FILE: '/x' })).toEqual(['STATE_FILE: must not be SINK_FILE']);
    expect(issues({ SINK: 'http', STATE_FILE: '/s', HEC_URL: 'http://splunk.example:8088', HEC_TOKEN: 't' })).toEqual(['HEC_URL: must be https:// (the token must not travel in clear)']);
  });

  it('takes syslog facilities by name or number, and TLS files only with tls://', () => {
    const syslog = { SINK: 'syslog', STATE_FILE: '/s' };
    expect(parseConfig(ImporterEnv, { ...base, ...syslog, SYSLOG_URL: 'tls://siem.example:6514' }).SYSLOG_FACILITY).toBe(16);
    expect(parseConfig(ImporterEnv, { ...base, ...syslog, SYSLOG_URL: 'tcp://siem.example:514', SYSLOG_FACILITY: 'auth' }).SYSLOG_FACILITY).toBe(4);
    expect(parseConfig(ImporterEnv, { ...base, ...syslog, SYSLOG_URL: 'tcp://siem.example:514', SYSLOG_FACILITY: '23' }).SYSLOG_FACILITY).toBe(23);
    expect(issues({ ...syslog, SYSLOG_URL: 'tcp://siem.example:514', SYSLOG_FACILITY: '24' })).toHaveLength(1);
    expect(issues({ ...syslog, SYSLOG_URL: 'udp://siem.example:514' })).toEqual(['SYSLOG_URL: must be tcp://host:port or tls://host:port']);
    expect(issues({ ...syslog, SYSLOG_URL: 'tcp://siem.example:514', SYSLOG_CA_FILE: 'ca.pem' })).toEqual(['SYSLOG_CA_FILE: only with a tls:// SYSLOG_URL']);
    expect(issues({ ...syslog, SYSLOG_URL: 'tls://siem.example:6514', SYSLOG_CERT_FILE: 'c.pem' })).toEqual(['SYSLOG_KEY_FILE: SYSLOG_CERT_FILE and SYSLOG_KEY_FILE go together']);
  });

  it('takes SYSLOG_FORMAT rfc5424-json (default), cef or leef', () => {
    const syslog = { SINK: 'syslog', STATE_FILE: '/s', SYSLOG_URL: 'tcp://siem.example:514' };
    expect(parseConfig(ImporterEnv, { ...base, ...syslog }).SYSLOG_FORMAT).toBe('rfc5424-json');
    expect(parseConfig(ImporterEnv, { ...base, ...syslog, SYSLOG_FORMAT: 'cef' }).SYSLOG_FORMAT).toBe('cef');
    expect(parseConfig(ImporterEnv, { ...base, ...syslog, SYSLOG_FORMAT: 'leef' }).SYSLOG_FORMAT).toBe('leef');
    expect(issues({ ...syslog, SYSLOG_FORMAT: 'json' })).toHaveLength(1);
  });

  it('names the keys of the Sentinel sink, the secret also from a file, https only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-sentinel-'));
    writeFileSync(join(dir, 'secret'), 'client-secret\n', { mode: 0o600 });
    const sentinel = {
      SINK: 'sentinel',
      STATE_FILE: '/s',
      SENTINEL_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      SENTINEL_CLIENT_ID: 'c',
      SENTINEL_CLIENT_SECRET_FILE: join(dir, 'secret'),
      SENTINEL_ENDPOINT: 'https://dce.westeurope-1.ingest.monitor.azure.com',
      SENTINEL_DCR_ID: 'dcr-0123',
      SENTINEL_STREAM: 'Custom-KeywayEvents',
    };
    expect(parseConfig(ImporterEnv, { ...base, ...sentinel })).toMatchObject({ SENTINEL_CLIENT_SECRET: 'client-secret', SENTINEL_AUTHORITY_URL: 'https://login.microsoftonline.com' });
    expect(issues({ SINK: 'sentinel', STATE_FILE: '/s' })).toEqual(
      ['SENTINEL_TENANT_ID', 'SENTINEL_CLIENT_ID', 'SENTINEL_CLIENT_SECRET', 'SENTINEL_ENDPOINT', 'SENTINEL_DCR_ID', 'SENTINEL_STREAM'].map((key) => `${key}: required with SINK=sentinel`),
    );
    expect(issues({ ...sentinel, SENTINEL_ENDPOINT: 'http://dce.example' })).toEqual(['SENTINEL_ENDPOINT: must be https:// (the token must not travel in clear)']);
    expect(issues({ ...sentinel, SENTINEL_AUTHORITY_URL: 'http://login.example' })).toEqual(['SENTINEL_AUTHORITY_URL: must be https:// (the client secret must not travel in clear)']);
  });

  it('asks the Elasticsearch sink for an index and exactly one way to authenticate', () => {
    const es = { SINK: 'elasticsearch', STATE_FILE: '/s', ES_URL: 'https://es.example:9200', ES_INDEX: 'logs-keyway-default' };
    expect(parseConfig(ImporterEnv, { ...base, ...es, ES_API_KEY: 'k' }).ES_API_KEY).toBe('k');
    expect(parseConfig(ImporterEnv, { ...base, ...es, ES_USERNAME: 'u', ES_PASSWORD: 'p' }).ES_USERNAME).toBe('u');
    expect(issues({ SINK: 'elasticsearch', STATE_FILE: '/s', ES_API_KEY: 'k' })).toEqual(['ES_URL: required with SINK=elasticsearch', 'ES_INDEX: required with SINK=elasticsearch']);
    expect(issues(es)).toEqual(['ES_API_KEY: set either ES_API_KEY, or ES_USERNAME and ES_PASSWORD']);
    expect(issues({ ...es, ES_API_KEY: 'k', ES_USERNAME: 'u', ES_PASSWORD: 'p' })).toEqual(['ES_API_KEY: set either ES_API_KEY, or ES_USERNAME and ES_PASSWORD']);
    expect(issues({ ...es, ES_USERNAME: 'u' })).toEqual(['ES_PASSWORD: required with ES_USERNAME']);
    expect(issues({ ...es, ES_API_KEY: 'k', ES_URL: 'http://es.example:9200' })).toEqual(['ES_URL: must be https:// (the credentials must not travel in clear)']);
  });

  it('describes every key', () => {
    const undescribed = Object.entries(ImporterEnv.in.shape)
      .filter(([, field]) => !field.description)
      .map(([name]) => name);
    expect(undescribed).toEqual([]);
  });
});

describe('importer feeds (FEEDS_FILE)', () => {
  const feedsFile = (entries: unknown) => {
    const path = join(mkdtempSync(join(tmpdir(), 'keyway-feeds-')), 'feeds.json');
    writeFileSync(path, JSON.stringify(entries));
    return path;
  };
  const feedIssues = (entries: unknown) => {
    try {
      importerFeeds({ ...base, FEEDS_FILE: feedsFile(entries) });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.issues;
      throw err;
    }
  };

  it('is the environment’s one feed without it, and stream pull by default', () => {
    expect(importerFeeds({ ...base, SINK_FILE: '/o.jsonl' })).toMatchObject([{ PULL: 'stream', PREFETCH: 50, STREAM_TIMEOUT_SEC: 60, KEYWAY_USERNAME: 'a@b.c' }]);
  });

  it('lays each entry over the environment; a login in an entry replaces the environment’s', () => {
    const feeds = importerFeeds({
      ...base,
      SINK_FILE: '/base.jsonl',
      FEEDS_FILE: feedsFile([
        { RESOURCE: 'https://topic.test/tenants/t1/topics/edr-events', SINK_FILE: '/a.jsonl' },
        { KEYWAY_CLIENT_ID: 'u2', KEYWAY_PRIVATE_KEY_FILE: '/k.pem', KEYWAY_KEY_ID: 'k1', SINK_FILE: '/b.jsonl', PREFETCH: 10 },
      ]),
    });
    expect(feeds).toMatchObject([
      { KEYWAY_USERNAME: 'a@b.c', RESOURCE: 'https://topic.test/tenants/t1/topics/edr-events', STATE_FILE: '/a.jsonl.checkpoint' },
      { KEYWAY_CLIENT_ID: 'u2', STATE_FILE: '/b.jsonl.checkpoint', PREFETCH: 10 },
    ]);
    expect(feeds[1]?.KEYWAY_USERNAME).toBeUndefined();
  });

  it('REPLAY_FROM: an ISO time, per feed too', () => {
    expect(issues({ SINK_FILE: '/o.jsonl', REPLAY_FROM: 'yesterday' })).toEqual(['REPLAY_FROM: must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z']);
    const feeds = importerFeeds({ ...base, SINK_FILE: '/base.jsonl', FEEDS_FILE: feedsFile([{ SINK_FILE: '/a.jsonl', REPLAY_FROM: '2026-11-30T00:00:00Z' }, { SINK_FILE: '/b.jsonl' }]) });
    expect(feeds.map((feed) => feed.REPLAY_FROM)).toEqual(['2026-11-30T00:00:00Z', undefined]);
  });

  it('refuses unknown and process-wide keys, an empty list, bad values, and two feeds on one file', () => {
    expect(feedIssues([{ SINK_FIEL: '/a' }])[0]).toMatch(/^FEEDS_FILE\[0\]/);
    expect(feedIssues([{ SINK_FILE: '/a', TOPIC_URL: 'https://other.test' }])[0]).toMatch(/^FEEDS_FILE\[0\]/);
    expect(feedIssues([])).toHaveLength(1);
    expect(feedIssues([{ SINK_FILE: '/a', PREFETCH: 0 }])).toEqual([expect.stringMatching(/^FEEDS_FILE\[0\]\.PREFETCH/)]);
    expect(feedIssues([{ SINK_FILE: '/a' }, { SINK_FILE: '/a' }])).toEqual(['FEEDS_FILE: two feeds share the STATE_FILE /a.checkpoint', 'FEEDS_FILE: two feeds share the SINK_FILE /a']);
  });

  it('takes secrets from files (X_FILE), in the environment and in an entry; an entry’s form of a key replaces the environment’s other form', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-feed-secrets-'));
    const secret = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    };
    const { KEYWAY_PASSWORD: _, ...withoutPassword } = base;
    const hec = { SINK: 'http', HEC_URL: 'https://splunk.test:8088' };
    const feeds = importerFeeds({
      ...withoutPassword,
      KEYWAY_PASSWORD_FILE: secret('password', 'env-pw\n'),
      ...hec,
      HEC_TOKEN_FILE: secret('hec', 'env-hec\n'),
      FEEDS_FILE: feedsFile([
        { STATE_FILE: '/a.state' },
        { STATE_FILE: '/b.state', KEYWAY_USERNAME: 'b@b.c', KEYWAY_PASSWORD: 'entry-pw', HEC_TOKEN: 'entry-hec' },
        { STATE_FILE: '/c.state', KEYWAY_USERNAME: 'c@b.c', KEYWAY_PASSWORD_FILE: secret('c-password', 'c-pw\n') },
      ]),
    });
    expect(feeds.map((feed) => [feed.KEYWAY_USERNAME, feed.KEYWAY_PASSWORD, feed.HEC_TOKEN])).toEqual([
      ['a@b.c', 'env-pw', 'env-hec'],
      ['b@b.c', 'entry-pw', 'entry-hec'],
      ['c@b.c', 'c-pw', 'env-hec'],
    ]);
    // SINK_FILE is a setting of its own, not SINK from a file
    expect(importerFeeds({ ...base, SINK_FILE: '/o.jsonl' })[0]).toMatchObject({ SINK: 'file', SINK_FILE: '/o.jsonl' });
    expect(feedIssues([{ SINK_FILE: '/a', HEC_TOKEN_FILE: join(dir, 'missing') }])).toEqual([`FEEDS_FILE[0].HEC_TOKEN_FILE: cannot read ${join(dir, 'missing')} (ENOENT)`]);
    expect(issues({ SINK_FILE: '/o', KEYWAY_PASSWORD_FILE: secret('both', 'file-pw') })).toEqual(['KEYWAY_PASSWORD: set both KEYWAY_PASSWORD and KEYWAY_PASSWORD_FILE; set one']);
  });

  it('names where a file is not valid JSON without quoting it (it may hold HEC_TOKEN or KEYWAY_PASSWORD), and a file it cannot read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-feeds-json-'));
    const fileIssues = (content: string) => {
      const path = join(dir, 'feeds.json');
      writeFileSync(path, content);
      try {
        importerFeeds({ ...base, FEEDS_FILE: path });
        return [];
      } catch (err) {
        if (err instanceof ConfigError) return err.issues;
        throw err;
      }
    };
    // V8 places this one (a trailing comma): line 2, just past the comma
    expect(fileIssues('[\n {"HEC_TOKEN": "s3cret-hec",}]')).toEqual(['FEEDS_FILE: not valid JSON at line 2, column 29']);
    // and quotes the text around this one in its message, without a position
    expect(fileIssues('[{"KEYWAY_PASSWORD": s3cret-pw}]')).toEqual(['FEEDS_FILE: not valid JSON']);
    const missing = join(dir, 'missing.json');
    expect(() => importerFeeds({ ...base, FEEDS_FILE: missing })).toThrow(expect.objectContaining({ issues: [`FEEDS_FILE: cannot read ${missing} (ENOENT)`] }));
  });

  it('DPOP on by default, the key next to the checkpoint; DPOP=off turns it off', () => {
    const env = { ...base, SINK_FILE: '/var/lib/keyway/out.jsonl' };
    expect(parseConfig(ImporterEnv, env)).toMatchObject({ DPOP: true, DPOP_KEY_FILE: '/var/lib/keyway/dpop-key.pem' });
    expect(parseConfig(ImporterEnv, { ...env, DPOP: 'off', DPOP_KEY_FILE: '/etc/keyway/agent.pem' })).toMatchObject({ DPOP: false, DPOP_KEY_FILE: '/etc/keyway/agent.pem' });
  });
});
