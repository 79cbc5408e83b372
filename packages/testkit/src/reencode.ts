/**
 * Other spellings of one credential, for issue 9's regression tests: each decodes to the same
 * bytes as the original under a lenient decoder, so a check keyed on the string would miss it.
 */

/** Spellings of one SAS key that decode to the same signature bytes (issue 9: a revoked key came back re-encoded). */
export function sasReencodings(sasKey: string): Record<string, string> {
  const match = /^(SharedAccessSignature sr=)([^&]+)&sig=([^&]+)&se=(\d+)&skn=(.+)$/.exec(sasKey);
  if (!match) throw new Error('not a canonical SAS key');
  const [, head, sr, rawSig, se, skn] = match as unknown as [string, string, string, string, string, string];
  const sig = decodeURIComponent(rawSig);
  const at = (s: string) => `${head}${sr}&sig=${s}&se=${se}&skn=${skn}`;
  const firstPlain = /[A-Za-z0-9]/.exec(rawSig)!.index;
  const trailingBits = Buffer.from(sig, 'base64').toString('base64');
  const lastData = trailingBits[42]!;
  // 32 bytes leave two spare bits in the 43rd character: set one and the bytes stay the same
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const spareBitSet = alphabet[alphabet.indexOf(lastData) | 1]!;
  return {
    'padding dropped': at(encodeURIComponent(sig.replace(/=+$/, ''))),
    'base64url alphabet': at(encodeURIComponent(Buffer.from(sig, 'base64').toString('base64url'))),
    'extra trailing characters': at(encodeURIComponent(`${sig}AAAA`)),
    'trailing junk after padding': at(`${rawSig}%3D`),
    'non-zero trailing bits': at(encodeURIComponent(`${sig.slice(0, 42)}${spareBitSet}=`)),
    'padding not %-encoded': at(rawSig.replace('%3D', '=')),
    'lowercase hex escapes': at(rawSig.replace(/%([0-9A-F]{2})/g, (_m, hex: string) => `%${hex.toLowerCase()}`)),
    'needless %-escape': at(`${rawSig.slice(0, firstPlain)}%${rawSig.charCodeAt(firstPlain).toString(16).toUpperCase()}${rawSig.slice(firstPlain + 1)}`),
    'resource with lowercase hex escapes': `${head}${sr.replace(/%([0-9A-F]{2})/g, (_m, hex: string) => `%${hex.toLowerCase()}`)}&sig=${rawSig}&se=${se}&skn=${skn}`,
    'expiry with a leading zero': `${head}${sr}&sig=${rawSig}&se=0${se}&skn=${skn}`,
    'key name %-encoded': `${head}${sr}&sig=${rawSig}&se=${se}&skn=${encodeURIComponent(skn).replace('-', '%2D')}${skn.includes('-') ? '' : '&skn2=x'}`,
  };
}

/** The order n of P-256: (r, s) and (r, n - s) are both valid ECDSA signatures. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** The same ES256 JWS with s replaced by n - s: a valid signature the verifier must still refuse (issue 9). */
export function withNegatedS(jws: string): string {
  const [header, payload, signature] = jws.split('.') as [string, string, string];
  const bytes = Buffer.from(signature, 'base64url');
  const s = BigInt(`0x${bytes.subarray(32).toString('hex')}`);
  const negated = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex');
  return `${header}.${payload}.${Buffer.concat([bytes.subarray(0, 32), negated]).toString('base64url')}`;
}

/** Spellings of one compact JWS whose parts decode to the same bytes under a lenient base64url decoder. */
export function jwtReencodings(jws: string): Record<string, string> {
  const [header, payload, signature] = jws.split('.') as [string, string, string];
  const at = (sig: string) => `${header}.${payload}.${sig}`;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = signature.at(-1)!;
  // 64 octets leave four spare bits in the 86th character: set one and the octets stay the same
  const spareBitSet = alphabet[alphabet.indexOf(last) | 1]!;
  const variants: Record<string, string> = {
    'signature padded': at(`${signature}==`),
    'spare bits set': at(`${signature.slice(0, -1)}${spareBitSet}`),
    'whitespace in the signature': at(`${signature.slice(0, 40)}\n${signature.slice(40)}`),
    'standard base64 alphabet': at(Buffer.from(signature, 'base64url').toString('base64').replace(/=+$/, '')),
  };
  // only a real variant: a signature without "-" or "_" spells the same in both alphabets
  if (!/[-_]/.test(signature)) delete variants['standard base64 alphabet'];
  return variants;
}
