import { z } from 'zod';
import { configFields, seconds, sharedConfig } from '@keyway/kit';

export const TopicEnv = z.object({
  ...sharedConfig,
  PORT: configFields.port.default(8445).describe('HTTPS port'),
  AMQP_URL: configFields.optionalUrl.describe('amqp(s)://user:pass@host:port/vhost; unset = embedded in-memory broker'),
  PUBLIC_BASE_URL: z.string().url().describe('the URL SAS resource URIs name, e.g. https://localhost:8445'),
  PAC_URL: z.string().url().describe('base URL of PAC, asked (over mTLS) for the tenant SAS keys'),
  LOCK_DURATION_SEC: seconds(60).describe('peek-lock duration; an unsettled message returns to the queue after it'),
  MAX_BATCH_BYTES: z.coerce.number().int().positive().default(1_048_576).describe('largest batch accepted, after gzip inflation'),
  MAX_DELIVERIES: z.coerce.number().int().min(1).default(10).describe('deliveries of one message before it is dead-lettered'),
  SAS_KEY_CACHE_SEC: z.coerce.number().int().min(0).default(30).describe('how long tenant SAS keys fetched from PAC are reused'),
  QUEUE_TYPE: z.enum(['quorum', 'classic']).default('quorum').describe('RabbitMQ queue type of subscriptions: quorum | classic'),
});
export type TopicEnv = z.output<typeof TopicEnv>;
