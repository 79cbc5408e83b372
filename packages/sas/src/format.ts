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

const FIELDS = new Set(['sr', 'sig', 'se', 'skn']);
/** HMAC-SHA256 is 32 bytes: 43 base64 characters and one "=" of padding, as Azure writes it. */
const CANONICAL_SIG = /^[A-Za-z0-9+/]{43}=$/;

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
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    throw new SasError('ERR_SAS_MALFORMED', `field ${name} is not URL-encoded correctly`);
  }
  if (encodeURIComponent(value) !== raw) throw new SasError('ERR_SAS_MALFORMED', `field ${name} is not in its canonical URL encoding`);
  return value;
}

/** The signature must be the canonical base64 of 32 bytes: padded, standard alphabet, zero trailing bits. */
function canonicalSignature(sig: string): string {
  if (!CANONICAL_SIG.test(sig) || Buffer.from(sig, 'base64').toString('base64') !== sig) {
    throw new SasError('ERR_SAS_MALFORMED', 'sig is not the canonical base64 of an HMAC-SHA256');
  }
  return sig;
}

export function parseSas(header: string): SasToken {
  const prefix = `${SAS_SCHEME} `;
  if (!header.startsWith(prefix)) throw new SasError('ERR_SAS_MALFORMED', `authorization must use the ${SAS_SCHEME} scheme`);
  const fields = new Map<string, string>();
  for (const part of header.slice(prefix.length).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SasError('ERR_SAS_MALFORMED', 'malformed shared access signature field');
    const name = part.slice(0, eq);
    if (!FIELDS.has(name)) throw new SasError('ERR_SAS_MALFORMED', 'unknown shared access signature field');
    if (fields.has(name)) throw new SasError('ERR_SAS_MALFORMED', `duplicate field ${name}`);
    fields.set(name, canonicalValue(name, part.slice(eq + 1)));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  const skn = fields.get('skn');
  if (!sr || !sig || !se || !skn) throw new SasError('ERR_SAS_MALFORMED', 'sr, sig, se and skn are required');
  // No leading zeros: the string-to-sign holds the number, so "se=0123" would sign like "se=123".
  if (!/^[1-9]\d{0,11}$/.test(se)) throw new SasError('ERR_SAS_MALFORMED', 'se must be unix seconds');
  if (!(KEY_NAMES as readonly string[]).includes(skn)) throw new SasError('ERR_SAS_MALFORMED', `unknown key name ${skn}`);
  return { resource: sr, signature: canonicalSignature(sig), expiry: Number(se), keyName: skn as KeyName };
}
