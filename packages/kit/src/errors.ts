/**
 * Errors named after the RFC error codes they answer with (RFC 6749 §5.2, RFC 6750 §3.1), plus the few
 * HTTP-level codes the non-OAuth APIs need. `description` is public; `detail` is for logs and audit only.
 */
export class OAuthError extends Error {
  override name = 'OAuthError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly description: string,
    readonly detail?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ? `${code}: ${description} (${detail})` : `${code}: ${description}`);
  }
}

const define = (status: number, code: string, defaultDescription: string) =>
  class extends OAuthError {
    constructor(description = defaultDescription, detail?: string, headers?: Record<string, string>) {
      super(status, code, description, detail, headers);
    }
  };

export const InvalidRequest = define(400, 'invalid_request', 'the request is missing a parameter or is malformed');
export const InvalidClient = define(401, 'invalid_client', 'client authentication failed');
export const InvalidGrant = define(400, 'invalid_grant', 'the grant is invalid, expired or revoked');
export const UnsupportedGrantType = define(400, 'unsupported_grant_type', 'the grant type is not supported');
export const InvalidScope = define(400, 'invalid_scope', 'the requested scope is invalid or exceeds what was granted');
export const InvalidToken = define(401, 'invalid_token', 'the token is invalid, expired or revoked');
export const InsufficientScope = define(403, 'insufficient_scope', 'the token does not grant this access');
/** RFC 9470 §3: the token's authentication is not strong or recent enough for this request (step-up). */
export const InsufficientUserAuthentication = define(401, 'insufficient_user_authentication', 'a more recent or stronger authentication is required');
export const AccessDenied = define(403, 'access_denied', 'access denied');
export const NotFound = define(404, 'not_found', 'no such resource');
export const Conflict = define(409, 'conflict', 'the resource already exists or changed meanwhile');
export const PayloadTooLarge = define(413, 'payload_too_large', 'the request body is too large');
export const UnsupportedMediaType = define(415, 'unsupported_media_type', 'the content type is not supported');
export const TooManyRequests = define(429, 'too_many_requests', 'rate limit exceeded');
export const ServerError = define(500, 'server_error', 'the server encountered an unexpected condition');
export const TemporarilyUnavailable = define(503, 'temporarily_unavailable', 'the service is temporarily unavailable');

export interface ErrorBody {
  error: string;
  error_description: string;
}

/** The one mapping from anything thrown to a public body: unexpected errors never leak their text. */
export function toErrorBody(err: unknown): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (err instanceof OAuthError) {
    return { status: err.status, body: { error: err.code, error_description: err.description }, headers: err.headers };
  }
  return {
    status: 500,
    body: { error: 'server_error', error_description: 'the server encountered an unexpected condition' },
    headers: {},
  };
}
