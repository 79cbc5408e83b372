import { errors } from 'jose';

export type TokenErrorCode =
  | 'ERR_TOKEN_MALFORMED'
  | 'ERR_TOKEN_ALG'
  | 'ERR_TOKEN_KID'
  | 'ERR_TOKEN_SIGNATURE'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_TOKEN_NOT_YET_VALID'
  | 'ERR_TOKEN_TYPE'
  | 'ERR_TOKEN_CLAIM'
  | 'ERR_TOKEN_REPLAYED';

/** Stable codes for every way a token can fail; mapped to OAuth errors at the HTTP edge. */
export class TokenError extends Error {
  override name = 'TokenError';
  constructor(
    readonly code: TokenErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function toTokenError(err: unknown): TokenError {
  if (err instanceof TokenError) return err;
  if (err instanceof errors.JWTExpired) return new TokenError('ERR_TOKEN_EXPIRED', err.message);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || (err.claim === 'iat' && err.reason === 'check_failed')) return new TokenError('ERR_TOKEN_NOT_YET_VALID', err.message);
    if (err.claim === 'typ') return new TokenError('ERR_TOKEN_TYPE', err.message);
    return new TokenError('ERR_TOKEN_CLAIM', err.message);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenError('ERR_TOKEN_ALG', err.message);
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return new TokenError('ERR_TOKEN_KID', err.message);
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenError('ERR_TOKEN_SIGNATURE', err.message);
  if (err instanceof errors.JOSEError) return new TokenError('ERR_TOKEN_MALFORMED', err.message);
  throw err;
}
