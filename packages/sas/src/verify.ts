import { timingSafeEqual } from 'node:crypto';
import { SasError } from './errors.ts';
import { parseSas, type KeyName } from './format.ts';
import { sasKeyId, signature } from './sign.ts';

export type Right = 'listen' | 'send';

export const rightsOf = (keyName: KeyName): Right[] => (keyName === 'listen-send' ? ['listen', 'send'] : [keyName]);

export interface VerifyOptions {
  /** the resource the request is for; the key must name exactly this resource */
  resource: string;
  right: Right;
  /** namespace keys to try: primary, then secondary (so a rotation never breaks a holder) */
  keys: string[];
  nowSec?: number;
  /** skew allowed past expiry */
  clockToleranceSec?: number;
}

export interface VerifiedSas {
  resource: string;
  keyName: KeyName;
  expiry: number;
  keyId: string;
}

function sameResource(a: string, b: string): boolean {
  // Azure compares resource URIs case-insensitively.
  return a.toLowerCase() === b.toLowerCase();
}

/** Signature first (constant time), then expiry, resource and rights: nothing about a forged key is trusted. */
export function verifySas(header: string, options: VerifyOptions): VerifiedSas {
  const token = parseSas(header);
  const presented = Buffer.from(token.signature, 'base64');
  const matched = options.keys.some((key) => {
    const expected = Buffer.from(signature(key, token.keyName, token.resource, token.expiry), 'base64');
    return expected.length === presented.length && timingSafeEqual(expected, presented);
  });
  if (!matched) throw new SasError('ERR_SAS_SIGNATURE', 'the shared access signature does not match');
  const now = options.nowSec ?? Math.floor(Date.now() / 1000);
  if (token.expiry + (options.clockToleranceSec ?? 0) <= now) throw new SasError('ERR_SAS_EXPIRED', 'the shared access signature has expired');
  if (!sameResource(token.resource, options.resource)) throw new SasError('ERR_SAS_RESOURCE', 'the shared access signature is for another resource');
  if (!rightsOf(token.keyName).includes(options.right)) throw new SasError('ERR_SAS_RIGHTS', `the shared access signature lacks the ${options.right} right`);
  return { resource: token.resource, keyName: token.keyName, expiry: token.expiry, keyId: sasKeyId(presented) };
}
