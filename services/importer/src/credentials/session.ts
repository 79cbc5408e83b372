import type { TokenResponse } from '@keyway/contracts';
import { ApiError, signClientAssertion, type ClientKeyPair, type PasClient } from '@keyway/clients';
import type { Logger } from '@keyway/kit';

/** A password, or a key pair registered for RFC 7523 private_key_jwt (passwordless agents). */
export type Credentials = { kind: 'password'; username: string; password: string; scope?: string } | ({ kind: 'private_key_jwt'; scope?: string } & ClientKeyPair);

/** Renew when this share of a credential's lifetime is left, so a slow call never meets an expired one. */
export const RENEW_AT_REMAINING = 0.2;
const JWT_TIME_GRANULARITY_MS = 1000;

/**
 * The agent's OAuth session: logs in, refreshes the pair before the refresh token expires, and logs
 * in again with its credentials when refreshing is no longer possible.
 */
export class Session {
  private tokens?: { response: TokenResponse; refreshRenewAt: number; refreshExpiresAt: number };
  /** how often the agent logged in and refreshed (credentials' generations) */
  readonly counts = { logins: 0, refreshes: 0 };

  constructor(
    private readonly pas: PasClient,
    private readonly credentials: Credentials,
    private readonly log: Logger,
    /** told of each login and refresh, and how it ended (the agent's metrics) */
    private readonly renewed: (credential: 'login' | 'refresh', outcome: 'success' | 'failure') => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** A refresh token that is valid now and not about to expire. */
  async refreshToken(): Promise<string> {
    const current = this.tokens;
    if (current && this.now() < current.refreshRenewAt) return current.response.refresh_token;
    if (current && this.now() < current.refreshExpiresAt) {
      try {
        this.remember(await this.pas.refresh(current.response.refresh_token));
        this.counts.refreshes += 1;
        this.renewed('refresh', 'success');
        this.log.info('session refreshed');
        return this.tokens!.response.refresh_token;
      } catch (err) {
        this.renewed('refresh', 'failure');
        if (!(err instanceof ApiError)) throw err;
        this.log.warn('refresh refused; logging in again', { error: err.code });
      }
    }
    return this.login();
  }

  /** when the refresh token is due for renewal (ms); undefined before the first login */
  get renewAt(): number | undefined {
    return this.tokens?.refreshRenewAt;
  }

  /** Forget the pair (it was refused somewhere) so the next call logs in again. */
  invalidate(): void {
    this.tokens = undefined;
  }

  private async login(): Promise<string> {
    try {
      await this.logIn();
    } catch (err) {
      this.renewed('login', 'failure');
      throw err;
    }
    this.counts.logins += 1;
    this.renewed('login', 'success');
    return this.tokens!.response.refresh_token;
  }

  private async logIn(): Promise<void> {
    const credentials = this.credentials;
    if (credentials.kind === 'password') {
      this.remember(await this.pas.password(credentials.username, credentials.password, credentials.scope));
      this.log.info('logged in', { username: credentials.username });
    } else {
      // A fresh assertion per login, addressed to the issuer PAS names itself (RFC 7523 §3 item 3),
      // dated by the wall clock the IdP checks it against rather than the session's schedule clock.
      const { issuer } = await this.pas.discovery();
      this.remember(await this.pas.clientCredentials(signClientAssertion(credentials, issuer), credentials.scope));
      this.log.info('logged in', { clientId: credentials.clientId, kid: credentials.kid });
    }
  }

  private remember(response: TokenResponse): void {
    const issuedAt = this.now();
    const lifetimeMs = response.refresh_expires_in * 1000;
    // JWT times have one-second granularity: "exp" may fall up to a second before issuedAt + lifetime.
    const expiresAt = issuedAt + lifetimeMs - JWT_TIME_GRANULARITY_MS;
    this.tokens = { response, refreshExpiresAt: expiresAt, refreshRenewAt: expiresAt - lifetimeMs * RENEW_AT_REMAINING };
  }
}
