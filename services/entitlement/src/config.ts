import { z } from 'zod';
import { configFields, sharedConfig } from '@keyway/kit';

export const EntitlementEnv = z.object({
  ...sharedConfig,
  PORT: configFields.port.default(8442).describe('HTTPS port'),
  IDP_URL: z.string().url().describe('the IdP, where user credentials are registered'),
});
export type EntitlementEnv = z.output<typeof EntitlementEnv>;
