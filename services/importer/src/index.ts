export { createAgent, type Agent, type AgentDeps, type AgentOptions, type AgentStats } from './agent.ts';
export { fileCheckpoint, memoryCheckpoint, type Checkpoint } from './checkpoint.ts';
export { ImporterEnv } from './config.ts';
export { createSink, type Sink } from './sinks/index.ts';
export { fileSink, type FileSinkOptions } from './sinks/file.ts';
export { stdoutSink } from './sinks/stdout.ts';
export { syslogSink, type SyslogSinkOptions } from './sinks/syslog.ts';
export { hecSink, HecError, type HecSinkOptions } from './sinks/http.ts';
export type { Credentials } from './credentials/session.ts';
