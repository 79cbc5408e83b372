import { describe, expect, it } from 'vitest';
import { ApiError } from '@keyway/clients';
import { describeFailure, EXIT } from './exit-codes.ts';

describe('describeFailure (issue 14: what an operator does next)', () => {
  it('tells a person refused by step-up (RFC 9470) to log in again with a code', () => {
    const failure = describeFailure(new ApiError(401, 'insufficient_user_authentication', 'this action requires a login with a second factor within the last 300 seconds'));
    expect(failure).toEqual({
      exitCode: EXIT.auth,
      message: 'this action requires a login with a second factor within the last 300 seconds (insufficient_user_authentication, HTTP 401): log in again with --otp (keyway login --otp <code>)',
    });
  });

  it('names --otp and enrolment when the operator scope is refused for want of a second factor; other refusals as before', () => {
    const missing = describeFailure(new ApiError(400, 'invalid_grant', 'the operator scope requires a second factor: send otp'));
    expect(missing.exitCode).toBe(EXIT.auth);
    expect(missing.message).toMatch(/keyway login --otp <code> \(no factor yet: keyway mfa enroll\)$/);
    expect(describeFailure(new ApiError(400, 'invalid_grant', 'the username or password is incorrect'))).toEqual({
      exitCode: EXIT.usage,
      message: 'the username or password is incorrect (invalid_grant, HTTP 400)',
    });
  });
});
