import { SasError } from './errors.ts';

export const SAS_SCHEME = 'SharedAccessSignature';
export const KEY_NAMES = ['listen', 'send', 'listen-send'] as const;
export type KeyName = (typeof KEY_NAMES)[number];

export interface SasToken {
  /** the resource URI, decoded */
  resource: string;
  /** base64 signature, decoded from the URL encoding */
  signature: string;
  /** expiry, unix seconds */
  expiry: number;
  keyName: KeyName;
}

/** Exactly Azure Service Bus's shape: `SharedAccessSignature sr=…&sig=…&se=…&skn=…`. */
export function formatSas(token: SasToken): string {
  return (
    `${SAS_SCHEME} sr=${encodeURIComponent(token.resource)}` +
    `&sig=${encodeURIComponent(token.signature)}` +
    `&se=${token.expiry}` +
    `&skn=${encodeURIComponent(token.keyName)}`
  );
}

export function parseSas(header: string): SasToken {
  const prefix = `${SAS_SCHEME} `;
  if (!header.startsWith(prefix)) throw new SasError('ERR_SAS_MALFORMED', `authorization must use the ${SAS_SCHEME} scheme`);
  const fields = new Map<string, string>();
  for (const part of header.slice(prefix.length).trim().split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SasError('ERR_SAS_MALFORMED', 'malformed shared access signature field');
    const name = part.slice(0, eq);
    if (fields.has(name)) throw new SasError('ERR_SAS_MALFORMED', `duplicate field ${name}`);
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      throw new SasError('ERR_SAS_MALFORMED', `field ${name} is not URL-encoded correctly`);
    }
    fields.set(name, value);
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  const skn = fields.get('skn');
  if (!sr || !sig || !se || !skn) throw new SasError('ERR_SAS_MALFORMED', 'sr, sig, se and skn are required');
  if (!/^\d{1,12}$/.test(se)) throw new SasError('ERR_SAS_MALFORMED', 'se must be unix seconds');
  if (!(KEY_NAMES as readonly string[]).includes(skn)) throw new SasError('ERR_SAS_MALFORMED', `unknown key name ${skn}`);
  return { resource: sr, signature: sig, expiry: Number(se), keyName: skn as KeyName };
}
