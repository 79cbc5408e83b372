import { sign, type KeyObject } from 'node:crypto';
import type { Queryable } from '@keyway/db';
import { canonicalJson } from './chain.ts';
import { signedWith, type CheckpointSigner } from './checkpoint.ts';

/**
 * Signed trims (issue 11). A retention anchor alone is just a row: whoever can write the database
 * could delete a stream's events and insert an anchor copied from them, and the walk from it would find
 * nothing wrong. So each trim the audit service makes is signed with the checkpoint key, and verify
 * accepts an anchor only with a signed trim naming exactly its (stream, seq, hash). The payload names
 * its purpose, so a trim's signature never passes for a checkpoint's, nor the other way round.
 */
export interface SignedTrim {
  stream: string;
  /** the anchor: seq and hash of the newest trimmed event */
  seq: number;
  hash: string;
  /** ISO 8601, when the anchor event was written: a verifier checks it was kept long enough */
  eventTime: string;
  /** ISO 8601, when it was trimmed */
  trimmedAt: string;
  keyId: string;
  /** base64url Ed25519 signature over trimPayload() */
  signature: string;
}

type TrimStatement = Pick<SignedTrim, 'stream' | 'seq' | 'hash' | 'eventTime' | 'trimmedAt'>;

const trimPayload = (t: TrimStatement): Buffer => Buffer.from(canonicalJson({ eventTime: t.eventTime, hash: t.hash, purpose: 'trim', seq: t.seq, stream: t.stream, trimmedAt: t.trimmedAt }));

export const signTrim = (signer: CheckpointSigner, t: TrimStatement): SignedTrim => ({
  ...t,
  keyId: signer.keyId,
  signature: sign(null, trimPayload(t), signer.privateKey).toString('base64url'),
});

export const trimSigned = (t: SignedTrim, publicKey: KeyObject): boolean => signedWith(trimPayload(t), t.keyId, t.signature, publicKey);

interface TrimRow {
  stream: string;
  seq: string | number;
  hash: string;
  event_time: Date;
  trimmed_at: Date;
  key_id: string;
  signature: string;
  [column: string]: unknown;
}

/** A stream's recorded trims, oldest first. */
export async function readTrims(db: Queryable, stream: string): Promise<SignedTrim[]> {
  const rows = await db.query<TrimRow>('SELECT stream, seq, hash, event_time, trimmed_at, key_id, signature FROM keyway_audit.trims WHERE stream = $1 ORDER BY seq', [stream]);
  return rows.map((r) => ({
    stream: r.stream,
    seq: Number(r.seq),
    hash: r.hash,
    eventTime: r.event_time.toISOString(),
    trimmedAt: r.trimmed_at.toISOString(),
    keyId: r.key_id,
    signature: r.signature,
  }));
}
