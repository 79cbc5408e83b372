import { z } from 'zod';
import { configFields, sharedConfig } from '@keyway/kit';

/** The launcher's own knobs; everything has a development default. */
export const LaunchEnv = z.object({
  REDIS_URL: configFields.optionalUrl.describe('redis://…; unset = embedded in-memory store'),
  AMQP_URL: configFields.amqpUrl.describe('amqp://…, or the nodes of one cluster separated by commas; unset = embedded in-memory broker'),
  DATABASE_URL: configFields.optionalUrl.describe(
    'postgres://… as a role that may migrate (the services then connect as their own keyway_<service> roles, trust auth); unset = embedded PostgreSQL (PGlite) in memory',
  ),
  KEYWAY_HOME: z.string().default('.keyway').describe('where certificates, logs and the demo output land'),
  KEYWAY_PORT_BASE: configFields.port.default(8441).describe('idp listens here, entitlement +1, pas +2, pac +3, topic +4, audit +5'),
  KEYWAY_CERT_HOURS: z.coerce.number().positive().max(720).default(12).describe('lifetime of the development service certificates; renewed at half of it while the launcher runs'),
  TRUST_DOMAIN: sharedConfig.TRUST_DOMAIN,
  TLS_RELOAD_SEC: sharedConfig.TLS_RELOAD_SEC,
  DEMO_PUBLISH_INTERVAL_MS: z.coerce.number().int().min(100).default(2000).describe('how often the demo producer publishes'),
  LOG_LEVEL: configFields.logLevel,
});
