import { z } from 'zod';
import { VENDOR_TENANT, TenantId } from '@keyway/contracts';
import { configFields, operatorTokenConfig, pasKeysConfig, requiredInProduction, sharedConfig } from '@keyway/kit';

export const AuditEnv = requiredInProduction(
  z.object({
    ...sharedConfig,
    ...pasKeysConfig,
    ...operatorTokenConfig,
    PORT: configFields.port.default(8446).describe('HTTPS port'),
    PUBLIC_URL: z.string().url().describe('this service\'s URL as PAS names it in operator access tokens (one of PAS\'s ADMIN_AUDIENCES): the "aud" checked at the query API'),
    PAS_URL: z.string().url().describe('PAS: issuer of operator access tokens, their JWKS and their introspection'),
    ENTITLEMENT_URL: z.string().url().describe('the entitlement service: which tenants have the audit feed'),
    TOPIC_URL: z.string().url().describe("the topic service: where the tenants' audit feeds are published (its internal publish, mTLS)"),
    OPERATOR_TENANT: TenantId.default(VENDOR_TENANT).describe("the vendor's own tenant: events without a tenant are exported to it, and it sees them unredacted"),
    CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(300).default(30).describe('clock skew accepted when verifying operator access tokens'),
    AUDIT_CHECKPOINT_KEY_FILE: z
      .string()
      .min(1)
      .optional()
      .describe(
        'PEM (PKCS#8) Ed25519 private key the heads of the audit streams are signed with; keep it outside the database. Its public key is what `keyway audit verify` holds. Development: generated (0600, with <file>.pub) next to the dev PKI when unset',
      ),
    AUDIT_CHECKPOINT_INTERVAL_SEC: z.coerce
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(10)
      .describe('how often each stream head that moved is signed; deleting the newest events goes unnoticed only within this window'),
    AUDIT_EXPORT_INTERVAL_MS: z.coerce.number().int().min(100).default(1000).describe("how often the exporter reads every service's audit stream for events to publish to tenants' `audit` topics"),
  }),
  'DATABASE_URL',
).refine((env) => env.KEYWAY_ENV === 'development' || env.AUDIT_CHECKPOINT_KEY_FILE !== undefined, {
  path: ['AUDIT_CHECKPOINT_KEY_FILE'],
  message: 'required unless KEYWAY_ENV=development (then a key is generated next to the dev PKI)',
  when: () => true,
});
export type AuditConfig = z.output<typeof AuditEnv>;
