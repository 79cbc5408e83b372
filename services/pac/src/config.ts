import { z } from 'zod';
import { configFields, kekConfig, operatorTokenConfig, pasKeysConfig, stepUpConfig, requiredInProduction, seconds, sharedConfig } from '@keyway/kit';

export const PacEnv = requiredInProduction(
  z.object({
    ...sharedConfig,
    ...kekConfig,
    ...pasKeysConfig,
    ...operatorTokenConfig,
    ...stepUpConfig,
    AMQP_URL: configFields.amqpUrl.describe(
      'RabbitMQ carrying the entitlement change events (one URL, or the nodes of one cluster separated by commas); unset (KEYWAY_ENV=development only) = embedded broker private to this process',
    ),
    PORT: configFields.port.default(8444).describe('HTTPS port'),
    PUBLIC_URL: z.string().url().describe('this PAC\'s URL as PAS names it in access tokens (PAS\'s ACCESS_AUDIENCE): operator tokens at the admin API must carry it in "aud"'),
    PAS_URL: z.string().url().describe('PAS: issuer of the refresh tokens PAC accepts, and their JWKS'),
    ENTITLEMENT_URL: z.string().url().describe('the entitlement service (system of record): asked, over mTLS, at every SAS mint and key check whether the holder still has the right'),
    TOPIC_BASE_URL: z.string().url().describe('the topic service URL that SAS resource URIs name'),
    SAS_TTL_SEC: seconds(86_400).describe('SAS key lifetime (default 1 day)'),
    REVOCATION_MODE: z.enum(['strict', 'lenient']).default('strict').describe('strict: entitlement removals revoke SAS keys within seconds; lenient: keys last until they expire'),
    CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(300).default(30).describe('clock skew accepted when verifying tokens'),
    REFUSALS_PER_SOURCE: z.coerce
      .number()
      .int()
      .positive()
      .default(120)
      .describe('refusals of tokens that do not verify (and malformed requests) one source address may cause per REFUSAL_WINDOW_SEC; past it /v1/sas answers 429 before any work or audit write'),
    REFUSAL_WINDOW_SEC: seconds(60).describe('the window of REFUSALS_PER_SOURCE, and the one such refusals are aggregated over: one refusals.aggregated audit event per source'),
  }),
  'REDIS_URL',
  'DATABASE_URL',
  'AMQP_URL',
  'KEYWAY_KEK_FILE',
);
export type PacConfig = z.output<typeof PacEnv>;
