import type { TokenResponse } from '@keyway/contracts';
import { ApiError, type PasClient } from '@keyway/clients';
import type { Logger } from '@keyway/kit';

export type Credentials = { kind: 'password'; username: string; password: string; scope?: string };

/** Renew when this share of a credential's lifetime is left, so a slow call never meets an expired one. */
export const RENEW_AT_REMAINING = 0.2;

/**
 * The agent's OAuth session: logs in, refreshes the pair before the refresh token expires, and logs
 * in again with its credentials when refreshing is no longer possible.
 */
export class Session {
  private tokens?: { response: TokenResponse; refreshRenewAt: number; refreshExpiresAt: number };

  constructor(
    private readonly pas: PasClient,
    private readonly credentials: Credentials,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** A refresh token that is valid now and not about to expire. */
  async refreshToken(): Promise<string> {
    const current = this.tokens;
    if (current && this.now() < current.refreshRenewAt) return current.response.refresh_token;
    if (current && this.now() < current.refreshExpiresAt) {
      try {
        this.remember(await this.pas.refresh(current.response.refresh_token));
        this.log.info('session refreshed');
        return this.tokens!.response.refresh_token;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        this.log.warn('refresh refused; logging in again', { error: err.code });
      }
    }
    return this.login();
  }

  /** Forget the pair (it was refused somewhere) so the next call logs in again. */
  invalidate(): void {
    this.tokens = undefined;
  }

  private async login(): Promise<string> {
    const { username, password, scope } = this.credentials;
    this.remember(await this.pas.password(username, password, scope));
    this.log.info('logged in', { username });
    return this.tokens!.response.refresh_token;
  }

  private remember(response: TokenResponse): void {
    const issuedAt = this.now();
    const lifetimeMs = response.refresh_expires_in * 1000;
    this.tokens = { response, refreshExpiresAt: issuedAt + lifetimeMs, refreshRenewAt: issuedAt + lifetimeMs * (1 - RENEW_AT_REMAINING) };
  }
}
