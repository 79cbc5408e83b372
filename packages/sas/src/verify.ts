import { timingSafeEqual } from 'node:crypto';
import { SasError } from './errors.ts';
import { parseSasFields, type KeyName, type ParsedSas } from './format.ts';
import { keyIdOfSignature, signatureBytes } from './sign.ts';

export type Right = 'listen' | 'send';

const rightsOf = (keyName: KeyName): Right[] => (keyName === 'listen-send' ? ['listen', 'send'] : [keyName]);

export interface UseOptions {
  /** the resource the request is for; the key must name exactly this resource */
  resource: string;
  right: Right;
  nowSec?: number;
  /** skew allowed past expiry */
  clockToleranceSec?: number;
}

export interface VerifyOptions extends UseOptions {
  /** namespace keys to try: primary, then secondary (so a rotation never breaks a holder) */
  keys: string[];
}

/** What a genuine key says (sr, skn, se) and its id; only ever built from a key whose signature matched. */
export interface VerifiedSas {
  resource: string;
  keyName: KeyName;
  expiry: number;
  keyId: string;
}

function sameResource(a: string, b: string): boolean {
  // Azure compares resource URIs case-insensitively (the same spelling, the usual case, needs no folding).
  return a === b || a.toLowerCase() === b.toLowerCase();
}

/** Headers whose parse is kept: a holder presents the same key for a day, so most verifications parse nothing. */
const PARSED_KEPT = 10_000;
const parsed = new Map<string, ParsedSas>();

/**
 * parseSasFields, kept per header text (a pure function of it; the result is never changed). Only
 * the parse is kept: the signature is checked on every call. Starts over when full, so a flood of
 * distinct headers costs what parsing costs and no more memory.
 */
function parseOnce(header: string): ParsedSas {
  let token = parsed.get(header);
  if (token === undefined) {
    token = parseSasFields(header);
    if (parsed.size >= PARSED_KEPT) parsed.clear();
    parsed.set(header, token);
  }
  return token;
}

/** The signature alone (constant time), against each namespace key in turn: nothing about a forged key is trusted. */
export function verifySasSignature(header: string, keys: string[]): VerifiedSas {
  const token = parseOnce(header);
  const presented = token.signatureBytes;
  let matched = false;
  for (const key of keys) {
    const expected = signatureBytes(key, token.keyName, token.encodedResource, token.expiry);
    if (expected.length === presented.length && timingSafeEqual(expected, presented)) {
      matched = true;
      break;
    }
  }
  if (!matched) throw new SasError('ERR_SAS_SIGNATURE', 'the shared access signature does not match');
  // the id is a hash of its own, and verification does not need it: derived when first read
  let keyId: string | undefined;
  return {
    resource: token.resource,
    keyName: token.keyName,
    expiry: token.expiry,
    get keyId() {
      keyId ??= keyIdOfSignature(token.signature);
      return keyId;
    },
  };
}

/** What a genuine key may be used for: not past its expiry, exactly this resource, and the right asked for. */
export function checkSasUse(verified: VerifiedSas, options: UseOptions): VerifiedSas {
  const now = options.nowSec ?? Math.floor(Date.now() / 1000);
  if (verified.expiry + (options.clockToleranceSec ?? 0) <= now) throw new SasError('ERR_SAS_EXPIRED', 'the shared access signature has expired');
  if (!sameResource(verified.resource, options.resource)) throw new SasError('ERR_SAS_RESOURCE', 'the shared access signature is for another resource');
  if (!rightsOf(verified.keyName).includes(options.right)) throw new SasError('ERR_SAS_RIGHTS', `the shared access signature lacks the ${options.right} right`);
  return verified;
}

/** Signature first (constant time), then expiry, resource and rights. */
export function verifySas(header: string, options: VerifyOptions): VerifiedSas {
  return checkSasUse(verifySasSignature(header, options.keys), options);
}
