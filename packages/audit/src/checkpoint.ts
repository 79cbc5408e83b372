import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Queryable } from '@keyway/db';
import { canonicalJson } from './chain.ts';
import { CHECKPOINTS, listStreams, readHead } from './layout.ts';

/**
 * Signed checkpoints (issue 11). Whoever can write the database can rewrite a hash chain and recompute
 * every hash after the change, or cut its newest events. So the audit service signs each stream's head
 * (stream, seq, hash, time) every few seconds with an Ed25519 key kept outside the database; the
 * verifier holds only the public key. A rewrite then disagrees with a signed (seq, hash), a cut leaves
 * the head below the newest checkpoint, and a forged checkpoint fails its signature. What falls between
 * the newest checkpoint and the head is covered by the chain alone.
 */
export interface Checkpoint {
  stream: string;
  seq: number;
  hash: string;
  /** ISO 8601, when it was signed */
  time: string;
  /** keyId() of the signing key */
  keyId: string;
  /** base64url Ed25519 signature over checkpointPayload() */
  signature: string;
}

export interface CheckpointSigner {
  privateKey: KeyObject;
  keyId: string;
}

/** The bytes a checkpoint's signature covers. */
const checkpointPayload = (c: Pick<Checkpoint, 'stream' | 'seq' | 'hash' | 'time'>): Buffer => Buffer.from(canonicalJson({ hash: c.hash, seq: c.seq, stream: c.stream, time: c.time }));

/** A key's id: SHA-256 of its public key (SPKI DER), so a verifier can tell which key signed. */
export const keyId = (key: KeyObject): string =>
  createHash('sha256')
    .update((key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'der' }))
    .digest('base64url')
    .slice(0, 22);

const isMissing = (err: unknown) => (err as { code?: unknown }).code === 'ENOENT';

function ed25519(key: KeyObject, file: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${file}: not an Ed25519 key (${key.asymmetricKeyType})`);
  return key;
}

/**
 * The signing key from a PKCS#8 PEM file. With `generate` (development only), a missing file is
 * created with a fresh key, mode 0600 (exclusive create: two instances starting at once keep the same
 * key), and its public key is written next to it as `<file>.pub` for verifiers.
 */
export async function loadCheckpointSigner(file: string, options: { generate?: boolean } = {}): Promise<CheckpointSigner> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if (!isMissing(err) || !options.generate) throw err;
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' }).catch((e: unknown) => {
      if ((e as { code?: unknown }).code !== 'EEXIST') throw e;
    });
    pem = await readFile(file, 'utf8');
    if (createPublicKey(pem).equals(publicKey)) await writeFile(`${file}.pub`, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  }
  const privateKey = ed25519(createPrivateKey(pem), file);
  return { privateKey, keyId: keyId(privateKey) };
}

/** The verifier's key from a PEM file: an SPKI public key (or, for convenience, the private key itself). */
export async function loadCheckpointPublicKey(file: string): Promise<KeyObject> {
  return ed25519(createPublicKey(await readFile(file, 'utf8')), file);
}

export const signCheckpoint = (signer: CheckpointSigner, head: Pick<Checkpoint, 'stream' | 'seq' | 'hash' | 'time'>): Checkpoint => ({
  ...head,
  keyId: signer.keyId,
  signature: sign(null, checkpointPayload(head), signer.privateKey).toString('base64url'),
});

/** Whether `signature` over `payload` was made by `publicKey` (named by `signedBy`, its keyId). */
export function signedWith(payload: Buffer, signedBy: string, signature: string, publicKey: KeyObject): boolean {
  return signedBy === keyId(publicKey) && verify(null, payload, publicKey, Buffer.from(signature, 'base64url'));
}

/** Whether the checkpoint was signed by `publicKey` and says what it was signed over. */
export const checkpointSigned = (c: Checkpoint, publicKey: KeyObject): boolean => signedWith(checkpointPayload(c), c.keyId, c.signature, publicKey);

interface CheckpointRow {
  stream: string;
  seq: string | number;
  hash: string;
  time: Date;
  key_id: string;
  signature: string;
  [column: string]: unknown;
}

/** A stream's checkpoints, oldest first. */
export async function readCheckpoints(db: Queryable, stream: string): Promise<Checkpoint[]> {
  const rows = await db.query<CheckpointRow>(`SELECT stream, seq, hash, time, key_id, signature FROM ${CHECKPOINTS} WHERE stream = $1 ORDER BY seq`, [stream]);
  return rows.map((r) => ({ stream: r.stream, seq: Number(r.seq), hash: r.hash, time: r.time.toISOString(), keyId: r.key_id, signature: r.signature }));
}

/**
 * Signs the head of every stream that moved since its newest checkpoint (the audit service, every
 * AUDIT_CHECKPOINT_INTERVAL). Run by the keyway_audit role, the only one that may insert checkpoints.
 */
export async function checkpointStreams(db: Queryable, signer: CheckpointSigner, now: number = Date.now()): Promise<Checkpoint[]> {
  const time = new Date(now).toISOString();
  const made: Checkpoint[] = [];
  for (const stream of await listStreams(db)) {
    const head = await readHead(db, stream);
    const [newest] = await db.query<{ seq: string | number }>(`SELECT max(seq) AS seq FROM ${CHECKPOINTS} WHERE stream = $1`, [stream]);
    if (head.seq <= Number(newest?.seq ?? 0)) continue;
    const checkpoint = signCheckpoint(signer, { stream, seq: head.seq, hash: head.hash, time });
    // another instance may have signed the same head: one checkpoint per (stream, seq) is enough
    const inserted = await db.query(`INSERT INTO ${CHECKPOINTS} (stream, seq, hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stream, seq) DO NOTHING RETURNING seq`, [
      checkpoint.stream,
      checkpoint.seq,
      checkpoint.hash,
      checkpoint.time,
      checkpoint.keyId,
      checkpoint.signature,
    ]);
    if (inserted.length > 0) made.push(checkpoint);
  }
  return made;
}
