import { z } from 'zod';
import { configFields, sharedConfig } from '@keyway/kit';
import { TenantId, VENDOR_TENANT } from '@keyway/contracts';

export const IdpEnv = z.object({
  ...sharedConfig,
  PORT: configFields.port.default(8441).describe('HTTPS port'),
  PAS_URL: z.string().url().optional().describe('PAS: issuer of the operator access tokens that prove an operator asked for a change to an operator account, and their JWKS; unset: operator accounts’ credentials cannot be replaced'),
  ENTITLEMENT_URL: z.string().url().optional().describe('the entitlement service’s URL as PAS names it in operator access tokens ("aud" of the forwarded proof)'),
  OPERATOR_TENANT: TenantId.default(VENDOR_TENANT).describe('the vendor\'s own tenant, whose users are operators (as the entitlement service\'s OPERATOR_TENANT)'),
  CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(300).default(30).describe('clock skew accepted when verifying operator access tokens'),
});
export type IdpEnv = z.output<typeof IdpEnv>;
