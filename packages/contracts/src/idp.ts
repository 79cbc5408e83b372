import { z } from 'zod';
import { Email, TenantId } from './common.ts';

export const PasswordCheck = z.object({ email: Email, password: z.string().min(1).max(1024) });
export type PasswordCheck = z.infer<typeof PasswordCheck>;

/** Who the credentials belong to. */
export const Subject = z.object({ sub: z.string(), tenant: TenantId, email: Email });
export type Subject = z.infer<typeof Subject>;

export const Password = z.string().min(12, 'must be at least 12 characters').max(1024);

/** Registering (or replacing) a user's credentials; sent by the entitlement service. */
export const CredentialRegistration = z.object({
  sub: z.string().min(1).max(128),
  tenant: TenantId,
  email: Email,
  password: Password.optional(),
});
export type CredentialRegistration = z.infer<typeof CredentialRegistration>;
