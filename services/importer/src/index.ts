export { createAgent, type Agent, type AgentDeps, type AgentOptions, type AgentStats } from './agent.ts';
export { ImporterEnv } from './config.ts';
export { fileSink } from './sinks/file.ts';
export type { Sink } from './sinks/sink.ts';
export type { Credentials } from './credentials/session.ts';
