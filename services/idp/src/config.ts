import { z } from 'zod';
import { configFields, kekConfig, pasKeysConfig, requiredInProduction, seconds, sharedConfig } from '@keyway/kit';
import { TenantId, VENDOR_TENANT } from '@keyway/contracts';
import { DEFAULT_VERIFICATION_LIMITS as LIMITS } from './credentials/verification-guard.ts';

const count = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const IdpEnv = requiredInProduction(
  z.object({
    ...sharedConfig,
    ...pasKeysConfig,
    ...kekConfig,
    PORT: configFields.port.default(8441).describe('HTTPS port'),
    SCRYPT_CONCURRENCY: count(LIMITS.hashConcurrency).describe('password verifications (scrypt, 32 MiB each) running at once; keep below the libuv thread pool size (UV_THREADPOOL_SIZE, default 4)'),
    SCRYPT_QUEUE: z.coerce.number().int().min(0).default(LIMITS.hashQueue).describe('password verifications waiting for a slot; beyond, 503 temporarily_unavailable with Retry-After at once'),
    SCRYPT_MAX_WAIT_MS: count(LIMITS.hashMaxWaitMs).describe('the longest a password verification waits for a slot before 503'),
    VERIFY_FAILURES_PER_ACCOUNT: count(LIMITS.failuresPerAccount).describe(
      "failed verifications of one account (password or client assertion), from every PAS together, per VERIFY_WINDOW_SEC before 429: the second line behind PAS's login throttle",
    ),
    VERIFY_WINDOW_SEC: seconds(LIMITS.windowSec).describe('the window of VERIFY_FAILURES_PER_ACCOUNT, and the one failed verifications are aggregated over in the trail (one event per account)'),
    PAS_URL: z
      .string()
      .url()
      .optional()
      .describe('PAS: issuer of the operator access tokens that prove an operator asked for a change to an operator account, and their JWKS; unset: operator accounts’ credentials cannot be replaced'),
    ENTITLEMENT_URL: z.string().url().optional().describe('the entitlement service’s URL as PAS names it in operator access tokens ("aud" of the forwarded proof)'),
    OPERATOR_TENANT: TenantId.default(VENDOR_TENANT).describe("the vendor's own tenant, whose users are operators (as the entitlement service's OPERATOR_TENANT)"),
    PASSKEY_ORIGIN: z
      .string()
      .url()
      .refine((url) => new URL(url).protocol === 'https:', 'must be an https URL (WebAuthn runs in secure contexts only)')
      .optional()
      .describe(
        'the origin of PAS’s login page, where passkeys are made and used (WebAuthn relying party; its host is the RP ID, so passkeys survive a port change but not a domain change); default PAS_URL',
      ),
    PASSKEY_RP_NAME: z.string().min(1).max(64).default('Keyway').describe('the relying party name authenticators show next to a passkey'),
    CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(300).default(30).describe('clock skew accepted when verifying operator access tokens'),
  }),
  'REDIS_URL',
  'DATABASE_URL',
  'KEYWAY_KEK_FILE',
);
export type IdpConfig = z.output<typeof IdpEnv>;
