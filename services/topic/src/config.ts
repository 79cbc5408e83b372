import { z } from 'zod';
import { configFields, requiredInProduction, seconds, sharedConfig } from '@keyway/kit';

export const TopicEnv = requiredInProduction(
  z.object({
    ...sharedConfig,
    PORT: configFields.port.default(8445).describe('HTTPS port'),
    AMQP_URL: configFields.amqpUrl.describe(
      'amqp(s)://user:pass@host:port/vhost, or the nodes of one cluster separated by commas (tried in turn, also after a connection loss); unset (KEYWAY_ENV=development only) = embedded in-memory broker',
    ),
    PUBLIC_BASE_URL: z.string().url().describe('the URL SAS resource URIs name, e.g. https://localhost:8445'),
    INSTANCE_URL: z
      .string()
      .url()
      .optional()
      .describe(
        "this instance's own base URL, reachable by the other topic instances (not through the load balancer): they pass on settles of the locks it holds there, over mTLS; default PUBLIC_BASE_URL (one instance)",
      ),
    PAC_URL: z.string().url().describe('base URL of PAC, asked (over mTLS) for the tenant SAS keys'),
    ENTITLEMENT_URL: z.string().url().describe('base URL of the entitlement service, asked (over mTLS) which subscriptions a feed lists'),
    SUBSCRIPTION_CACHE_SEC: z.coerce
      .number()
      .int()
      .min(0)
      .max(300)
      .default(5)
      .describe("how long a feed's list of subscriptions from the entitlement service is reused; bounds how long a newly listed one answers 404"),
    SUBSCRIPTION_EXPIRY_SEC: z.coerce
      .number()
      .int()
      .min(14_400)
      .default(604_800)
      .describe("RabbitMQ x-expires of a subscription's queues: deleted, with what they hold, after this long without a receive or a declaration"),
    LOCK_DURATION_SEC: seconds(60).describe('peek-lock duration; an unsettled message returns to the queue after it'),
    MAX_BATCH_BYTES: z.coerce.number().int().positive().default(1_048_576).describe('largest batch accepted, after gzip inflation'),
    MAX_DELIVERIES: z.coerce.number().int().min(1).default(10).describe('deliveries of one message before it is dead-lettered'),
    SAS_KEY_CACHE_SEC: z.coerce
      .number()
      .int()
      .min(0)
      .default(30)
      .describe('how long PAC’s verdict on a SAS key’s signature is reused (a tenant key rotation is noticed sooner, see auth/sas-signatures.ts)'),
    REVOCATION_CACHE_SEC: z.coerce.number().int().min(0).max(60).default(2).describe('how long PAC’s "not revoked" answer for a SAS key is reused; bounds how long a revoked key keeps working'),
    QUEUE_TYPE: z.enum(['quorum', 'classic']).default('quorum').describe('RabbitMQ queue type of subscriptions: quorum | classic'),
    BROKER_PREFETCH: z.coerce
      .number()
      .int()
      .min(1)
      .max(65_535)
      .default(500)
      .describe('unacked messages RabbitMQ hands one instance per subscription (locked + buffered ahead); caps the locks of all streams and receives of a subscription on one instance'),
    PUBLISH_RATE_PER_SEC: z.coerce.number().int().positive().default(200).describe('batches a tenant may publish per second on average, across all instances (counted in the store)'),
    PUBLISH_BURST: z.coerce.number().int().positive().default(400).describe('batches a tenant may publish at once; the rate is counted in windows of PUBLISH_BURST / PUBLISH_RATE_PER_SEC seconds'),
    MAX_QUEUE_DEPTH: z.coerce
      .number()
      .int()
      .positive()
      .default(100_000)
      .describe(
        'ready messages a subscription (and its dead-letter queue) may hold; beyond it the oldest go to its dead letters (x-max-length, drop-head); publishing is refused (429) only while every subscription of the topic is full',
      ),
    QUEUE_DEPTH_POLL_SEC: z.coerce
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(15)
      .describe(
        'the metric keyway.topic.queue.depth asks the broker for the depth of each subscription queue this instance declared at most this often (a scrape in between reuses the last answer); 0 = at every collection',
      ),
    REPLAY_RETENTION_SEC: z.coerce
      .number()
      .int()
      .min(3600)
      .default(604_800)
      .describe("how long a topic's replay stream keeps its batches (RabbitMQ x-max-age), unless the tenant's tier says otherwise"),
    REPLAY_MAX_BYTES: z.coerce.number().int().min(1_048_576).default(5_368_709_120).describe("the most a topic's replay stream holds (x-max-length-bytes); beyond it the oldest segments are dropped"),
    MESSAGE_TTL_SEC: z.coerce
      .number()
      .int()
      .min(0)
      .default(604_800)
      .describe('a batch not completed within this long after its publish is dead-lettered (TTLExpiredException), unless the tier says otherwise; 0 = never'),
    DUPLICATE_WINDOW_SEC: z.coerce
      .number()
      .int()
      .min(0)
      .max(604_800)
      .default(600)
      .describe('a batch id published again to the same topic within this long is answered as accepted and not delivered twice (across instances, in the store); 0 = off'),
    STREAM_HEARTBEAT_SEC: z.coerce.number().int().positive().default(15).describe('an idle stream writes an empty line this often, so proxies keep the connection'),
  }),
  'REDIS_URL',
  'DATABASE_URL',
  'AMQP_URL',
);
export type TopicConfig = z.output<typeof TopicEnv>;
