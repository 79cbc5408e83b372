import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Store } from '@keyway/store';
import type { AccessClaims } from '@keyway/tokens';
import type { Tokens } from './authorization-server.ts';

/** The cookie value: 32 random bytes (RFC 6265bis §8.7: unguessable), base64url. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
const newSessionId = (): string => randomBytes(32).toString('base64url');

const SEAL_INFO = 'keyway web-session v1: tokens';

/**
 * What the store holds of a session. The tokens are sealed (AES-256-GCM) under a key derived from
 * the session id (HKDF-SHA256), and the record is found under the id's SHA-256: the id itself is only
 * in the browser's cookie. So a copy of the store (a dump, a replica, a backup; Redis is no
 * secret-at-rest store) yields neither a cookie that works nor a refresh token that does, and no
 * key has to be managed for it. The price: nothing server-side can read a session's tokens without its
 * cookie (ending every session of a person is PAS's family revocation, not ours).
 */
const SessionRecord = z.object({
  v: z.literal(1),
  sub: z.string(),
  tid: z.string(),
  /** ms since the epoch */
  createdAt: z.number(),
  absoluteExp: z.number(),
  idleExp: z.number(),
  /** when the idle expiry was last moved (ms) */
  seenAt: z.number(),
  /** the access token's exp (unix seconds), to refresh ahead of it without unsealing */
  accessExp: z.number(),
  sealed: z.string(),
});
type SessionRecord = z.infer<typeof SessionRecord>;

const SealedTokens = z.object({ accessToken: z.string(), refreshToken: z.string(), claims: z.custom<AccessClaims>((v) => typeof v === 'object' && v !== null) });
type SealedTokens = z.infer<typeof SealedTokens>;

/** A session as one request read it: `raw` is what the store held, for compare-and-set. */
export interface LoadedSession {
  id: string;
  key: string;
  raw: string;
  record: SessionRecord;
  tokens: SealedTokens;
}

export interface SessionLifetimes {
  idleTtlSec: number;
  /** unset: the refresh token's lifetime at login */
  absoluteTtlSec?: number | undefined;
  now?: () => number;
}

const parseJson = (raw: string): unknown => {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
};
const keyOf = (id: string): string => `session:${createHash('sha256').update(id).digest('base64url')}`;
const sealKey = (id: string): Buffer => Buffer.from(hkdfSync('sha256', Buffer.from(id, 'base64url'), Buffer.alloc(0), SEAL_INFO, 32));

function seal(id: string, key: string, tokens: SealedTokens): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(id), iv);
  // the store key as associated data: a sealed value moved under another session's key does not open
  cipher.setAAD(Buffer.from(key));
  const body = Buffer.concat([cipher.update(JSON.stringify(tokens), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

function unseal(id: string, key: string, sealed: string): SealedTokens | undefined {
  const bytes = Buffer.from(sealed, 'base64url');
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealKey(id), bytes.subarray(0, 12));
    decipher.setAAD(Buffer.from(key));
    decipher.setAuthTag(bytes.subarray(12, 28));
    const text = Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
    return SealedTokens.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** Sessions in the site's store (hot state: losing it means logging in again, never more access). */
export function sessionStore(store: Store, lifetimes: SessionLifetimes) {
  const now = lifetimes.now ?? Date.now;
  const idleMs = lifetimes.idleTtlSec * 1000;
  // the idle expiry slides at most this often: not a write per request
  const slideAfterMs = Math.min(60_000, idleMs / 8);

  const ttlOf = (record: SessionRecord): number => Math.min(record.idleExp, record.absoluteExp) - now();
  const encode = (record: SessionRecord): string => JSON.stringify(record);
  const withTokens = (id: string, key: string, record: Omit<SessionRecord, 'sealed' | 'accessExp' | 'sub' | 'tid'>, tokens: Tokens): SessionRecord => ({
    ...record,
    sub: tokens.claims.sub,
    tid: tokens.claims.tid,
    accessExp: tokens.accessExp,
    sealed: seal(id, key, { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, claims: tokens.claims }),
  });

  async function load(id: string): Promise<LoadedSession | undefined> {
    if (!SESSION_ID.test(id)) return undefined;
    const key = keyOf(id);
    const raw = await store.get(key);
    if (raw === null) return undefined;
    const parsed = SessionRecord.safeParse(parseJson(raw));
    const tokens = parsed.success ? unseal(id, key, parsed.data.sealed) : undefined;
    if (!parsed.success || !tokens) return undefined;
    // the store's TTL ends it too; this holds when a clock or a TTL lags
    if (now() >= Math.min(parsed.data.idleExp, parsed.data.absoluteExp)) return undefined;
    return { id, key, raw, record: parsed.data, tokens };
  }

  return {
    load,
    /** a new session (a new id at every login: no fixation) */
    async create(tokens: Tokens): Promise<LoadedSession> {
      const id = newSessionId();
      const key = keyOf(id);
      const at = now();
      const absoluteMs = (lifetimes.absoluteTtlSec ?? tokens.refreshExpiresIn) * 1000;
      const record = withTokens(id, key, { v: 1, createdAt: at, absoluteExp: at + absoluteMs, idleExp: at + idleMs, seenAt: at }, tokens);
      const raw = encode(record);
      await store.set(key, raw, { ttlMs: ttlOf(record), ifAbsent: true });
      return { id, key, raw, record, tokens: unseal(id, key, record.sealed) as SealedTokens };
    },
    /** slides the idle expiry; a session another request changed meanwhile already slid it */
    async touch(session: LoadedSession): Promise<void> {
      const at = now();
      if (at - session.record.seenAt < slideAfterMs) return;
      const record = { ...session.record, idleExp: at + idleMs, seenAt: at };
      await store.compareAndSet(session.key, session.raw, encode(record), { ttlMs: ttlOf(record) });
    },
    /**
     * Stores the rotated pair. Only the holder of the session's refresh lock calls it; other requests
     * may still slide the idle expiry meanwhile, so it retries on their change, never drops the new
     * refresh token (the old one is spent: presenting it would revoke the family).
     */
    async replaceTokens(session: LoadedSession, tokens: Tokens): Promise<LoadedSession | undefined> {
      for (let current: LoadedSession | undefined = session; current; current = await load(session.id)) {
        const at = now();
        const record = withTokens(session.id, session.key, { ...current.record, idleExp: at + idleMs, seenAt: at }, tokens);
        const raw = encode(record);
        if (await store.compareAndSet(session.key, current.raw, raw, { ttlMs: ttlOf(record) })) {
          return { id: session.id, key: session.key, raw, record, tokens: { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, claims: tokens.claims } };
        }
      }
      return undefined;
    },
    async remove(id: string): Promise<void> {
      if (SESSION_ID.test(id)) await store.del(keyOf(id));
    },
    /** a short lock per session, so that one request in the whole deployment spends its refresh token */
    async lock(session: LoadedSession, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
      const lockKey = `${session.key}:refreshing`;
      const holder = randomBytes(16).toString('base64url');
      if (!(await store.set(lockKey, holder, { ttlMs, ifAbsent: true }))) return undefined;
      // released only by its holder: a lock that outlived its TTL may be someone else's by now
      return async () => void (await store.commitIf({ key: lockKey, expected: holder }, [{ op: 'del', key: lockKey }]));
    },
  };
}
export type SessionStore = ReturnType<typeof sessionStore>;
