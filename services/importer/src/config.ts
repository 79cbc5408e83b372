import { z } from 'zod';
import { configFields } from '@keyway/kit';

export const ImporterEnv = z.object({
  PAS_URL: z.string().url().describe('PAS, where the agent logs in'),
  PAC_URL: z.string().url().describe('PAC, where the agent gets SAS keys'),
  TOPIC_URL: z.string().url().describe('the topic service'),
  TLS_CA_FILE: z.string().describe('PEM CA the services’ certificates chain to'),
  KEYWAY_USERNAME: z.string().min(1).describe('the agent user’s email'),
  KEYWAY_PASSWORD: z.string().min(1).describe('the agent user’s password'),
  KEYWAY_SCOPE: z.string().optional().describe('feeds to ask for, e.g. "feed:edr-events"; default: all of the tenant’s'),
  RESOURCE: z.string().url().optional().describe('topic URI to pull; default: the tenant’s feed'),
  SUBSCRIPTION: z.string().regex(/^[a-z0-9-]{1,63}$/).default('default').describe('subscription to receive from'),
  SINK_FILE: z.string().describe('JSON-lines file batches are written to'),
  RECEIVE_TIMEOUT_SEC: z.coerce.number().int().min(1).max(60).default(20).describe('long-poll wait per receive'),
  LOG_LEVEL: configFields.logLevel,
});
export type ImporterEnv = z.output<typeof ImporterEnv>;
