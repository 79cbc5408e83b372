import { readFileSync } from 'node:fs';
import type { ImporterEnv } from '../config.ts';
import { elasticsearchSink } from './elasticsearch.ts';
import { fileSink } from './file.ts';
import { hecSink } from './http.ts';
import { sentinelSink } from './sentinel.ts';
import type { Sink } from './sink.ts';
import { stdoutSink } from './stdout.ts';
import { syslogSink } from './syslog.ts';

export type { Sink } from './sink.ts';

const pem = (file: string | undefined) => (file === undefined ? undefined : readFileSync(file, 'utf8'));

/** The sink SINK names, with its options; ImporterEnv's superRefine guarantees each sink's required keys. */
export async function createSink(config: ImporterEnv): Promise<Sink> {
  switch (config.SINK) {
    case 'file':
      return fileSink(config.SINK_FILE!, { maxBytes: config.SINK_FILE_MAX_BYTES, maxFiles: config.SINK_FILE_MAX_FILES });
    case 'stdout':
      return stdoutSink();
    case 'syslog':
      return syslogSink({
        url: config.SYSLOG_URL!,
        ca: pem(config.SYSLOG_CA_FILE),
        cert: pem(config.SYSLOG_CERT_FILE),
        key: pem(config.SYSLOG_KEY_FILE),
        facility: config.SYSLOG_FACILITY,
        format: config.SYSLOG_FORMAT,
      });
    case 'http':
      return hecSink({ url: config.HEC_URL!, token: config.HEC_TOKEN!, ca: pem(config.HEC_CA_FILE), index: config.HEC_INDEX });
    case 'sentinel':
      return sentinelSink({
        tenantId: config.SENTINEL_TENANT_ID!,
        clientId: config.SENTINEL_CLIENT_ID!,
        clientSecret: config.SENTINEL_CLIENT_SECRET!,
        authorityUrl: config.SENTINEL_AUTHORITY_URL,
        endpoint: config.SENTINEL_ENDPOINT!,
        dcrId: config.SENTINEL_DCR_ID!,
        stream: config.SENTINEL_STREAM!,
        ca: pem(config.SENTINEL_CA_FILE),
      });
    case 'elasticsearch':
      return elasticsearchSink({
        url: config.ES_URL!,
        auth: config.ES_API_KEY === undefined ? { username: config.ES_USERNAME!, password: config.ES_PASSWORD! } : { apiKey: config.ES_API_KEY },
        index: config.ES_INDEX!,
        ca: pem(config.ES_CA_FILE),
      });
  }
}
