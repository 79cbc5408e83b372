import { SasError } from './errors.ts';

export const SAS_SCHEME = 'SharedAccessSignature';
const KEY_NAMES = ['listen', 'send', 'listen-send'] as const;
export type KeyName = (typeof KEY_NAMES)[number];

export interface SasToken {
  /** the resource URI, decoded */
  resource: string;
  /** base64 signature, decoded from the URL encoding; always the canonical spelling of its bytes */
  signature: string;
  /** expiry, unix seconds */
  expiry: number;
  keyName: KeyName;
}

/**
 * HMAC-SHA256 is 32 bytes: 43 base64 characters and one "=" of padding, as Azure writes it; the last
 * character carries 2 bits of padding, which are zero (one of 16 characters), so that the text is the
 * one canonical spelling of its bytes.
 */
const CANONICAL_SIG = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
/** The same, as encodeURIComponent writes it: "+", "/" and "=" escaped. */
const ENCODED_SIG = /^(?:[A-Za-z0-9]|%2B|%2F){42}[AEIMQUYcgkosw048]%3D$/;
/** What encodeURIComponent leaves as it is: a value of only these is its own canonical encoding. */
const UNRESERVED = /^[A-Za-z0-9\-_.!~*'()]*$/;
/**
 * Unreserved characters and the upper-case escapes of the ASCII characters encodeURIComponent escapes
 * (a URI's ":", "/", "?", …): such a value is canonical, and decoding it is all there is to do.
 */
const ASCII_CANONICAL = /^(?:[A-Za-z0-9\-_.!~*'()]|%[01][0-9A-F]|%2[02-6BCF]|%3[A-F]|%40|%5[B-E]|%60|%7[BCDF])*$/;
const SE = /^[1-9]\d{0,11}$/;

/** Exactly Azure Service Bus's shape: `SharedAccessSignature sr=…&sig=…&se=…&skn=…`. */
export function formatSas(token: SasToken): string {
  return `${SAS_SCHEME} sr=${encodeURIComponent(token.resource)}` + `&sig=${encodeURIComponent(token.signature)}` + `&se=${token.expiry}` + `&skn=${encodeURIComponent(token.keyName)}`;
}

/**
 * The decoded value of a field, refusing every spelling but the one Azure writes
 * (encodeURIComponent: upper-case escapes, nothing escaped that need not be, nothing left raw that
 * must be). One credential has one spelling, so nothing keyed on it can be sidestepped by
 * re-encoding it.
 */
function canonicalValue(name: string, raw: string): string {
  // the common cases: nothing escaped (se, skn), or only ASCII escaped (a resource URI)
  if (UNRESERVED.test(raw)) return raw;
  if (ASCII_CANONICAL.test(raw)) return decodeURIComponent(raw);
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    throw new SasError('ERR_SAS_MALFORMED', `field ${name} is not URL-encoded correctly`);
  }
  if (encodeURIComponent(value) !== raw) throw new SasError('ERR_SAS_MALFORMED', `field ${name} is not in its canonical URL encoding`);
  return value;
}

/** A parsed key with what verification needs of it as received: the signature's bytes and the resource as signed. */
export interface ParsedSas extends SasToken {
  /** the signature's 32 bytes */
  signatureBytes: Buffer;
  /** the `sr` field as received: the canonical URL encoding of `resource`, which is what is signed */
  encodedResource: string;
}

/** The sig field: the canonical base64 of 32 bytes (padded, standard alphabet, zero padding bits), in its canonical URL encoding. */
function signatureOf(raw: string): string {
  if (ENCODED_SIG.test(raw)) return `${raw.slice(0, -3).replaceAll('%2B', '+').replaceAll('%2F', '/')}=`;
  const sig = canonicalValue('sig', raw);
  if (!CANONICAL_SIG.test(sig)) throw new SasError('ERR_SAS_MALFORMED', 'sig is not the canonical base64 of an HMAC-SHA256');
  return sig;
}

const PREFIX = `${SAS_SCHEME} `;

/** parseSas, keeping the signature's bytes and the resource as signed (verify.ts). */
export function parseSasFields(header: string): ParsedSas {
  if (!header.startsWith(PREFIX)) throw new SasError('ERR_SAS_MALFORMED', `authorization must use the ${SAS_SCHEME} scheme`);
  let sr: string | undefined;
  let sig: string | undefined;
  let se: string | undefined;
  let skn: string | undefined;
  let encodedResource = '';
  // One pass over the fields, without splitting into arrays or a map.
  for (let start = PREFIX.length; start <= header.length; ) {
    let end = header.indexOf('&', start);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq <= start || eq >= end) throw new SasError('ERR_SAS_MALFORMED', 'malformed shared access signature field');
    const name = header.slice(start, eq);
    const raw = header.slice(eq + 1, end);
    if (name === 'sr' || name === 'sig' || name === 'se' || name === 'skn') {
      if ((name === 'sr' ? sr : name === 'sig' ? sig : name === 'se' ? se : skn) !== undefined) throw new SasError('ERR_SAS_MALFORMED', `duplicate field ${name}`);
      const value = name === 'sig' ? signatureOf(raw) : canonicalValue(name, raw);
      if (name === 'sr') {
        sr = value;
        encodedResource = raw;
      } else if (name === 'sig') sig = value;
      else if (name === 'se') se = value;
      else skn = value;
    } else {
      throw new SasError('ERR_SAS_MALFORMED', 'unknown shared access signature field');
    }
    start = end + 1;
  }
  if (!sr || !sig || !se || !skn) throw new SasError('ERR_SAS_MALFORMED', 'sr, sig, se and skn are required');
  // No leading zeros: the string-to-sign holds the number, so "se=0123" would sign like "se=123".
  if (!SE.test(se)) throw new SasError('ERR_SAS_MALFORMED', 'se must be unix seconds');
  if (!(KEY_NAMES as readonly string[]).includes(skn)) throw new SasError('ERR_SAS_MALFORMED', `unknown key name ${skn}`);
  return { resource: sr, signature: sig, signatureBytes: Buffer.from(sig, 'base64'), encodedResource, expiry: Number(se), keyName: skn as KeyName };
}

export function parseSas(header: string): SasToken {
  const { resource, signature, expiry, keyName } = parseSasFields(header);
  return { resource, signature, expiry, keyName };
}
