import type { PacClient } from '@keyway/clients';
import { ApiError } from '@keyway/clients';
import type { Logger } from '@keyway/kit';
import { RENEW_AT_REMAINING, type Session } from './session.ts';

export interface TopicAddress {
  tenant: string;
  topic: string;
  resource: string;
}

/** Keeps a listen SAS key for the feed, renewed before it expires (and at once when refused). */
export class SasKeeper {
  private current?: { sasKey: string; address: TopicAddress; renewAt: number };
  /** SAS keys obtained so far */
  obtained = 0;

  constructor(
    private readonly pac: PacClient,
    private readonly session: Session,
    private readonly resource: string | undefined,
    private readonly log: Logger,
    /** told of each SAS key obtained, or refused (the agent's metrics) */
    private readonly renewed: (credential: 'sas_key', outcome: 'success' | 'failure') => void,
    /** a key is renewed while at least this much of it is left: a long poll, or the settles after a stream, must fit */
    private readonly minRemainingMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** the key, its feed, and when it is due for renewal (ms) */
  async key(): Promise<{ sasKey: string; address: TopicAddress; renewAt: number }> {
    if (this.current && this.now() < this.current.renewAt) return this.current;
    const response = await this.pac.sas({ refresh_token: await this.session.refreshToken(), resource: this.resource, rights: 'listen' }).catch((err: unknown) => {
      // A refresh token PAC refuses is of no more use: log in again next time.
      this.renewed('sas_key', 'failure');
      if (err instanceof ApiError && err.status === 401) this.session.invalidate();
      throw err;
    });
    const issuedAt = this.now();
    const expiresAt = Date.parse(response.expires_at);
    this.current = {
      sasKey: response.sas_key,
      address: parseResource(response.resource),
      renewAt: expiresAt - Math.max((expiresAt - issuedAt) * RENEW_AT_REMAINING, this.minRemainingMs),
    };
    this.obtained += 1;
    this.renewed('sas_key', 'success');
    this.log.info('sas key obtained', { resource: response.resource, keyId: response.key_id, expiresAt: response.expires_at });
    return this.current;
  }

  invalidate(): void {
    this.current = undefined;
  }
}

/** The SAS resource names the tenant topic: https://host/tenants/{tenant}/topics/{topic}. */
function parseResource(resource: string): TopicAddress {
  const match = /\/tenants\/([^/]+)\/topics\/([^/]+)$/.exec(new URL(resource).pathname);
  if (!match) throw new Error(`unexpected SAS resource ${resource}`);
  return { tenant: decodeURIComponent(match[1]!), topic: decodeURIComponent(match[2]!), resource };
}
