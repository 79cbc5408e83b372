import { readFileSync } from 'node:fs';
import type { ImporterEnv } from '../config.ts';
import { fileSink } from './file.ts';
import { hecSink } from './http.ts';
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
      });
    case 'http':
      return hecSink({ url: config.HEC_URL!, token: config.HEC_TOKEN!, ca: pem(config.HEC_CA_FILE), index: config.HEC_INDEX });
  }
}
