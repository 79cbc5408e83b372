import type { Command } from 'commander';
import type { AuditClient, ClientOptions, EntitlementClient, PacClient, PasClient } from '@keyway/clients';
import type { GlobalOptions } from './options.ts';

export type Service = 'entitlement' | 'pas' | 'pac' | 'topic' | 'audit' | 'releases';

/** What a command group gets from the program: connections, output and progress, all honouring the global flags. */
export interface CliContext {
  /** the global flags (and their environment variables), parsed */
  globals(): GlobalOptions;
  /** the entitlement admin API, authenticated as the operator */
  entitlement(): Promise<EntitlementClient>;
  /** PAS: its admin API authenticated as the operator */
  pas(): Promise<PasClient>;
  /** PAC: its admin API authenticated as the operator */
  pac(): Promise<PacClient>;
  /** the audit service's query API, authenticated as the operator */
  audit(): Promise<AuditClient>;
  /**
   * Options for any client of a service: its URL and the CA, plus the operator's credentials (the
   * certificate, or a fresh access token) unless `authenticated` is false.
   */
  clientOptions(service: Service, authenticated?: boolean): Promise<ClientOptions>;
  /** one JSON document with `--json`, else the readable rendering, on stdout */
  print(data: unknown, readable: () => string): void;
  /** a progress line on stderr, never mixed with the output scripts read; silent with `--quiet` */
  progress(message: string): void;
}

export interface CommandModule {
  register(program: Command, context: CliContext): void;
}
