import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Queryable } from '@keyway/db';
import type { Store } from '@keyway/store';

/** A registered passkey: the public key and what WebAuthn asks a relying party to keep (§6.1.1 sign count). */
export interface StoredPasskey {
  credentialId: string;
  sub: string;
  publicKey: Uint8Array<ArrayBuffer>;
  signCount: number;
  transports: string[];
  createdAt: Date;
  lastUsedAt: Date | undefined;
}

/** Enough for a phone, a laptop, a security key and their replacements; more is a sign of abuse. */
export const MAX_PASSKEYS_PER_USER = 10;

const TABLE = 'keyway_idp.passkeys';
const Transports = z.array(z.string().max(32)).max(8);

interface Row {
  credential_id: string;
  sub: string;
  public_key_hex: string;
  sign_count: string | number;
  transports: string;
  created_at: Date | string;
  last_used_at: Date | string | null;
  [column: string]: unknown;
}

const COLUMNS = `credential_id, sub, encode(public_key, 'hex') AS public_key_hex, sign_count, transports, created_at, last_used_at`;

const fromRow = (row: Row): StoredPasskey => ({
  credentialId: row.credential_id,
  sub: row.sub,
  publicKey: new Uint8Array(Buffer.from(row.public_key_hex, 'hex')),
  signCount: Number(row.sign_count),
  transports: Transports.catch([]).parse(JSON.parse(row.transports)),
  createdAt: new Date(row.created_at),
  lastUsedAt: row.last_used_at === null ? undefined : new Date(row.last_used_at),
});

/**
 * The IdP's passkeys in its system of record (0005_passkeys.sql): public keys only. Public keys and
 * bytes travel as hex text and are decoded in SQL, one encoding that pg and PGlite pass unchanged.
 */
export function passkeyRepository(db: Queryable) {
  return {
    async find(credentialId: string): Promise<StoredPasskey | undefined> {
      const [row] = await db.query<Row>(`SELECT ${COLUMNS} FROM ${TABLE} WHERE credential_id = $1`, [credentialId]);
      return row && fromRow(row);
    },
    async listBySub(sub: string): Promise<StoredPasskey[]> {
      return (await db.query<Row>(`SELECT ${COLUMNS} FROM ${TABLE} WHERE sub = $1 ORDER BY created_at`, [sub])).map(fromRow);
    },
    /** false when the credential id is registered already (to anyone: an id names one credential) or the user has MAX_PASSKEYS_PER_USER */
    async add(passkey: { credentialId: string; sub: string; publicKey: Uint8Array; signCount: number; transports: string[] }): Promise<boolean> {
      const rows = await db.query(
        `INSERT INTO ${TABLE} (credential_id, sub, public_key, sign_count, transports)
         SELECT $1, $2, decode($3, 'hex'), $4, $5
         WHERE (SELECT count(*) FROM ${TABLE} WHERE sub = $2) < $6
         ON CONFLICT (credential_id) DO NOTHING
         RETURNING credential_id`,
        [passkey.credentialId, passkey.sub, Buffer.from(passkey.publicKey).toString('hex'), passkey.signCount, JSON.stringify(passkey.transports), MAX_PASSKEYS_PER_USER],
      );
      return rows.length === 1;
    },
    /**
     * Records a sign-in: the new sign count and the time, only if the count is still the one the
     * verification started from (compare-and-set), so two assertions racing cannot both pass.
     */
    async used(credentialId: string, previousCount: number, newCount: number): Promise<boolean> {
      const rows = await db.query(`UPDATE ${TABLE} SET sign_count = $3, last_used_at = now() WHERE credential_id = $1 AND sign_count = $2 RETURNING credential_id`, [
        credentialId,
        previousCount,
        newCount,
      ]);
      return rows.length === 1;
    },
    /** Every passkey of a person whose credentials are removed. */
    async removeAll(sub: string): Promise<number> {
      return (await db.query(`DELETE FROM ${TABLE} WHERE sub = $1 RETURNING credential_id`, [sub])).length;
    },
  };
}
export type PasskeyRepository = ReturnType<typeof passkeyRepository>;

/** Long enough to touch a security key or unlock a phone; a challenge is a one-shot nonce (WebAuthn §13.4.3). */
export const CHALLENGE_TTL_MS = 5 * 60 * 1000;

const Ceremony = z.discriminatedUnion('kind', [z.object({ kind: z.literal('registration'), sub: z.string() }), z.object({ kind: z.literal('authentication') })]);
type Ceremony = z.infer<typeof Ceremony>;

/**
 * WebAuthn challenges in the IdP's hot store (Redis): 32 random bytes each (§13.4.3: at least 16),
 * kept under their hash for CHALLENGE_TTL_MS with the ceremony they were made for, and taken once:
 * an assertion or attestation presented again finds no challenge (replay refused).
 */
export function passkeyChallenges(store: Store) {
  const key = (challenge: string) => `webauthn-challenge:${createHash('sha256').update(challenge).digest('base64url')}`;
  return {
    async issue(ceremony: Ceremony): Promise<string> {
      const challenge = randomBytes(32).toString('base64url');
      await store.set(key(challenge), JSON.stringify(ceremony), { ttlMs: CHALLENGE_TTL_MS });
      return challenge;
    },
    /** the ceremony the challenge was issued for, once; undefined when unknown, expired or taken */
    async take(challenge: string): Promise<Ceremony | undefined> {
      const raw = await store.take(key(challenge));
      return raw === null ? undefined : Ceremony.parse(JSON.parse(raw));
    },
  };
}
export type PasskeyChallenges = ReturnType<typeof passkeyChallenges>;

/** The WebAuthn user handle (user.id, §5.4.3): an opaque 32 bytes derived from the subject, no personal data. */
export const userHandle = (sub: string): Uint8Array<ArrayBuffer> => new Uint8Array(createHash('sha256').update(`keyway-user:${sub}`).digest());

/** The challenge a response was made for, from its clientDataJSON (§5.8.1); undefined when unreadable. */
export function challengeOf(clientDataJSON: string): string | undefined {
  try {
    const parsed = z.object({ challenge: z.string().max(256) }).safeParse(JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data.challenge : undefined;
  } catch {
    return undefined;
  }
}

/** How long after a password verification the person may enrol a passkey (the login page's offer and its retries). */
export const ENROLMENT_WINDOW_MS = 10 * 60 * 1000;

/**
 * Who may enrol a passkey now: people whose password the IdP itself verified within
 * ENROLMENT_WINDOW_MS. So PAS's certificate alone (a stolen one) cannot add a way into an account it
 * has not just proven the password of.
 */
export function enrolmentWindows(store: Store) {
  const key = (sub: string) => `passkey-enrolment-window:${sub}`;
  return {
    open: async (sub: string): Promise<void> => void (await store.set(key(sub), '1', { ttlMs: ENROLMENT_WINDOW_MS })),
    isOpen: async (sub: string): Promise<boolean> => (await store.get(key(sub))) !== null,
  };
}
export type EnrolmentWindows = ReturnType<typeof enrolmentWindows>;
