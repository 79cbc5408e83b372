import { z } from 'zod';
import { configFields, sharedConfig } from '@keyway/kit';

export const IdpEnv = z.object({
  ...sharedConfig,
  PORT: configFields.port.default(8441).describe('HTTPS port'),
});
export type IdpEnv = z.output<typeof IdpEnv>;
