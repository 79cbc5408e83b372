import { z } from 'zod';
import { VENDOR_TENANT, TenantId } from '@keyway/contracts';
import { configFields, operatorTokenConfig, pasKeysConfig, stepUpConfig, requiredInProduction, sharedConfig } from '@keyway/kit';

export const EntitlementEnv = requiredInProduction(
  z.object({
    ...sharedConfig,
    ...pasKeysConfig,
    ...operatorTokenConfig,
    ...stepUpConfig,
    PORT: configFields.port.default(8442).describe('HTTPS port'),
    PUBLIC_URL: z.string().url().describe('this service\'s URL as PAS names it in operator access tokens (one of PAS\'s ADMIN_AUDIENCES): the "aud" checked at the admin API'),
    IDP_URL: z.string().url().describe('the IdP, where user credentials are registered'),
    PAS_URL: z.string().url().describe('PAS: issuer of operator access tokens, their JWKS and their introspection'),
    TOPIC_URL: z.string().url().describe('the topic service, where a subscription is declared (over mTLS) before it is listed, so it holds every batch from then on'),
    PAC_URL: z.string().url().optional().describe("PAC: the operator console rotates tenants' SAS keys there with the operator's token; unset = no rotation in the console"),
    RELEASES_URL: z
      .string()
      .url()
      .optional()
      .describe("the releases service: the operator console shows a tenant's downloads from there with the operator's token; unset = no downloads view in the console"),
    AUDIT_URL: z.string().url().optional().describe("the audit service: the operator console shows a tenant's audit events from there with the operator's token; unset = no audit view in the console"),
    AMQP_URL: configFields.amqpUrl.describe(
      'RabbitMQ carrying change events to PAS and PAC (one URL, or the nodes of one cluster separated by commas); unset (KEYWAY_ENV=development only) = embedded broker private to this process',
    ),
    OPERATOR_TENANT: TenantId.default(VENDOR_TENANT).describe("the vendor's own tenant: only its users may hold the operator role"),
    CRM_WEBHOOK_SECRET: z
      .string()
      .min(32, 'must be at least 32 characters')
      .optional()
      .describe('shared secret the CRM signs POST /v1/crm/webhook deliveries with (HMAC-SHA256); unset = CRM sync off'),
    CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(300).default(30).describe('clock skew accepted when verifying operator access tokens'),
    MAX_SUBSCRIPTIONS_PER_FEED: z.coerce
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(20)
      .describe('the most named subscriptions one feed of a tenant may list (each is two queues holding a copy of every batch)'),
  }),
  'REDIS_URL',
  'DATABASE_URL',
  'AMQP_URL',
);
export type EntitlementConfig = z.output<typeof EntitlementEnv>;
