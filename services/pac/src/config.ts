import { z } from 'zod';
import { configFields, seconds, sharedConfig } from '@keyway/kit';

export const PacEnv = z.object({
  ...sharedConfig,
  AMQP_URL: configFields.optionalUrl.describe('RabbitMQ carrying the entitlement change events; unset = embedded broker (single-process launcher only)'),
  PORT: configFields.port.default(8444).describe('HTTPS port'),
  PUBLIC_URL: z.string().url().describe('this PAC\'s URL as PAS names it in access tokens (PAS\'s ACCESS_AUDIENCE): operator tokens at the admin API must carry it in "aud"'),
  PAS_URL: z.string().url().describe('PAS: issuer of the refresh tokens PAC accepts, and their JWKS'),
  TOPIC_BASE_URL: z.string().url().describe('the topic service URL that SAS resource URIs name'),
  SAS_TTL_SEC: seconds(86_400).describe('SAS key lifetime (default 1 day)'),
  REVOCATION_MODE: z.enum(['strict', 'lenient']).default('strict').describe('strict: entitlement removals revoke SAS keys within seconds; lenient: keys last until they expire'),
  CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(300).default(30).describe('clock skew accepted when verifying tokens'),
});
export type PacEnv = z.output<typeof PacEnv>;
