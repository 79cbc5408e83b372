export { createAgent, type Agent, type AgentHealth } from './agent.ts';
export { fileCheckpoint } from './checkpoint.ts';
export { importerFeeds, ImporterEnv, ImporterFields } from './config.ts';
export { importerLogger, startImporter } from './run.ts';
export type { Sink } from './sinks/index.ts';
export { fileSink } from './sinks/file.ts';
export { syslogSink } from './sinks/syslog.ts';
