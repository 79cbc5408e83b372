import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '@keyway/kit';
import { ImporterEnv } from '../config.ts';
import { createSink, type Sink } from './index.ts';

const base = { PAS_URL: 'https://pas.test', PAC_URL: 'https://pac.test', TOPIC_URL: 'https://topic.test', TLS_CA_FILE: 'ca.crt', KEYWAY_USERNAME: 'a@b.c', KEYWAY_PASSWORD: 'pw', STATE_FILE: '/s' };
const made: Sink[] = [];
const sinkOf = async (env: Record<string, string>) => {
  const sink = await createSink(parseConfig(ImporterEnv, { ...base, ...env }));
  made.push(sink);
  return sink;
};
afterEach(async () => {
  await Promise.all(made.splice(0).map((sink) => sink.close()));
});

describe('createSink', () => {
  it('makes the sink SINK names with its keys, and no credential in its description (logged at start)', async () => {
    expect((await sinkOf({ SINK: 'syslog', SYSLOG_URL: 'tcp://siem.example:514', SYSLOG_FORMAT: 'leef' })).description).toBe('syslog tcp://siem.example:514 (RFC 5424, leef, one message per record)');
    expect((await sinkOf({ SINK: 'syslog', SYSLOG_URL: 'tcp://siem.example:514' })).description).toContain('rfc5424-json');
    const sentinel = await sinkOf({
      SINK: 'sentinel',
      SENTINEL_TENANT_ID: 't',
      SENTINEL_CLIENT_ID: 'c',
      SENTINEL_CLIENT_SECRET: 'sentinel-s3cret',
      SENTINEL_ENDPOINT: 'https://dce.westeurope-1.ingest.monitor.azure.com/',
      SENTINEL_DCR_ID: 'dcr-01',
      SENTINEL_STREAM: 'Custom-KeywayEvents',
    });
    expect(sentinel.description).toBe('Sentinel Logs Ingestion https://dce.westeurope-1.ingest.monitor.azure.com (DCR dcr-01, stream Custom-KeywayEvents)');
    const es = await sinkOf({ SINK: 'elasticsearch', ES_URL: 'https://es.example:9200', ES_INDEX: 'logs-keyway-default', ES_USERNAME: 'u', ES_PASSWORD: 'es-s3cret' });
    expect(es.description).toBe('Elasticsearch https://es.example:9200 (index logs-keyway-default)');
    for (const sink of [sentinel, es]) expect(sink.description).not.toMatch(/s3cret/);
  });
});
