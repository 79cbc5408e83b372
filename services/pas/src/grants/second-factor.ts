import type { AuditScope } from '@keyway/audit';
import type { AuthenticationContext } from '@keyway/contracts';
import { InvalidGrant } from '@keyway/kit';
import type { Access } from './authorize.ts';

const SECOND_FACTOR_REQUIRED = 'the operator scope requires a second factor: send otp';

/**
 * Issue 14: an operator login needs a second factor (amr mfa: a TOTP or recovery code with the
 * password, or a passkey), so a stolen password alone opens no admin API. Refused as invalid_grant
 * (RFC 6749 §5.2: the credentials do not suffice for this grant), recorded as mfa.required.
 */
export function requireSecondFactor(access: Access, authentication: AuthenticationContext, audit: AuditScope): void {
  if (access.kind !== 'operator' || authentication.amr.includes('mfa')) return;
  throw audit.refuse(new InvalidGrant(SECOND_FACTOR_REQUIRED, `amr ${authentication.amr.join(' ')}`), 'mfa.required');
}
