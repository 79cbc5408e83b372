import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SealError } from './errors.ts';
import type { Keyring } from './keyring.ts';

const PREFIX = 'kwsealed';
const VERSION = 'v1';
const ALG = 'aes-256-gcm';
const DEK_BYTES = 32;
/** NIST SP 800-38D §8.2.2: a random 96-bit IV per encryption, and every key here encrypts few values. */
const IV_BYTES = 12;
const TAG_BYTES = 16;
const B64URL = '[A-Za-z0-9_-]';

/**
 * kwsealed:v1:<kek id>:<wrap iv>:<wrapped DEK + tag>:<iv>:<ciphertext + tag>, every part base64url.
 * One ASCII string, so it sits in any JSON record, and a grep of a dump finds every sealed value.
 */
export const SEALED_PATTERN = new RegExp(`${PREFIX}:${VERSION}:${B64URL}{1,64}:${B64URL}+:${B64URL}+:${B64URL}+:${B64URL}+`, 'g');
const WHOLE = new RegExp(`^${SEALED_PATTERN.source}$`);

export const isSealed = (value: string): boolean => WHOLE.test(value);

interface Parts {
  kekId: string;
  wrapIv: Buffer;
  wrappedDek: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
}

function parse(sealed: string): Parts {
  const [prefix, version, kekId, wrapIv, wrappedDek, iv, ciphertext, ...rest] = sealed.split(':');
  if (prefix !== PREFIX || rest.length > 0 || ciphertext === undefined) throw new SealError('ERR_SEAL_MALFORMED', 'not a sealed value');
  if (version !== VERSION) throw new SealError('ERR_SEAL_MALFORMED', `sealed value version "${version}" is not supported`);
  if (!isSealed(sealed)) throw new SealError('ERR_SEAL_MALFORMED', 'sealed value is malformed');
  const bytes = (part: string) => Buffer.from(part, 'base64url');
  const parts = { kekId: kekId!, wrapIv: bytes(wrapIv!), wrappedDek: bytes(wrappedDek!), iv: bytes(iv!), ciphertext: bytes(ciphertext) };
  if (parts.wrapIv.length !== IV_BYTES || parts.iv.length !== IV_BYTES || parts.wrappedDek.length !== DEK_BYTES + TAG_BYTES || parts.ciphertext.length < TAG_BYTES) {
    throw new SealError('ERR_SEAL_MALFORMED', 'sealed value parts have the wrong length');
  }
  return parts;
}

const format = (p: Parts) => [PREFIX, VERSION, p.kekId, p.wrapIv, p.wrappedDek, p.iv, p.ciphertext].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join(':');

/** The DEK is bound to the KEK id it names; the value to the context, so moving it to another record does not open it. */
const wrapAad = (kekId: string) => Buffer.from(`${PREFIX}:${VERSION}:kek:${kekId}`);
const dataAad = (context: string) => Buffer.from(`${PREFIX}:${VERSION}:context:${context}`);

function encrypt(key: Buffer, plaintext: Buffer, aad: Buffer): { iv: Buffer; sealed: Buffer } {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALG, key, iv, { authTagLength: TAG_BYTES }).setAAD(aad);
  return { iv, sealed: Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]) };
}

function decrypt(key: Buffer, iv: Buffer, sealed: Buffer, aad: Buffer, what: string): Buffer {
  try {
    const decipher = createDecipheriv(ALG, key, iv, { authTagLength: TAG_BYTES }).setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    // GCM checks the tag in final(): nothing decrypted is ever returned from a value that fails it.
    throw new SealError('ERR_SEAL_INTEGRITY', `sealed value does not open: ${what}`);
  }
}

async function wrapUnderCurrent(keyring: Keyring, dek: Buffer): Promise<Pick<Parts, 'kekId' | 'wrapIv' | 'wrappedDek'>> {
  const kek = await keyring.current();
  const { iv, sealed } = encrypt(kek.key, dek, wrapAad(kek.id));
  return { kekId: kek.id, wrapIv: iv, wrappedDek: sealed };
}

async function unwrap(keyring: Keyring, parts: Parts): Promise<Buffer> {
  return decrypt(await keyring.kek(parts.kekId), parts.wrapIv, parts.wrappedDek, wrapAad(parts.kekId), 'its data key was altered or is under another KEK');
}

/** Envelope encryption: a fresh 256-bit DEK encrypts the value (AES-256-GCM), the current KEK wraps the DEK. */
export async function seal(keyring: Keyring, plaintext: string | Uint8Array, context: string): Promise<string> {
  const dek = randomBytes(DEK_BYTES);
  try {
    const { iv, sealed } = encrypt(dek, Buffer.from(plaintext), dataAad(context));
    return format({ ...(await wrapUnderCurrent(keyring, dek)), iv, ciphertext: sealed });
  } finally {
    dek.fill(0);
  }
}

/** The plaintext, or SealError: malformed, under a KEK the keyring does not hold, altered, or sealed for another context. */
export async function unseal(keyring: Keyring, sealed: string, context: string): Promise<Buffer> {
  const parts = parse(sealed);
  const dek = await unwrap(keyring, parts);
  try {
    return decrypt(dek, parts.iv, parts.ciphertext, dataAad(context), 'it was altered or belongs to another record');
  } finally {
    dek.fill(0);
  }
}

/**
 * The same value with its DEK wrapped under the current KEK (unchanged when it already is). Only the
 * DEK is re-encrypted: the value and its context stay as they are, so a rewrap needs no context.
 */
export async function rewrap(keyring: Keyring, sealed: string): Promise<string> {
  const parts = parse(sealed);
  if (parts.kekId === (await keyring.current()).id) return sealed;
  const dek = await unwrap(keyring, parts);
  try {
    return format({ ...parts, ...(await wrapUnderCurrent(keyring, dek)) });
  } finally {
    dek.fill(0);
  }
}

/** The KEK a sealed value is under (for listing what a rewrap has left to move). */
export const kekIdOf = (sealed: string): string => parse(sealed).kekId;
