import { z } from 'zod';
import { configFields, seconds, sharedConfig } from '@keyway/kit';

export const PasEnv = z.object({
  ...sharedConfig,
  PORT: configFields.port.default(8443).describe('HTTPS port'),
  PUBLIC_URL: z.string().url().describe('issuer URL: the "iss" of every token and the base of the discovery document'),
  ACCESS_AUDIENCE: z.string().url().describe('"aud" of access tokens: the PAC URL'),
  IDP_URL: z.string().url().describe('the IdP'),
  ENTITLEMENT_URL: z.string().url().describe('the entitlement service'),
  ACCESS_TOKEN_TTL_SEC: seconds(1200).describe('access token lifetime (default 20 min)'),
  REFRESH_TOKEN_TTL_SEC: seconds(1_209_600).describe('refresh token lifetime (default 14 days)'),
  CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(300).default(30).describe('clock skew accepted when verifying tokens'),
});
export type PasEnv = z.output<typeof PasEnv>;
