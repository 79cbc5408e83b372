/**
 * Service identity as SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md):
 * a service certificate names `spiffe://<trust domain>/<service>` in its one URI subjectAltName
 * (X509-SVID §2), and that URI, not the subject CN, is who the peer is.
 */

/** SPIFFE-ID §2.1: a trust domain is lowercase letters, digits, dots, dashes and underscores. */
export const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
export const DEFAULT_TRUST_DOMAIN = 'keyway';
/** One path segment (SPIFFE-ID §2.2 characters), which is also a safe file name for the dev PKI. */
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `spiffe://<trustDomain>/<service>`; throws on a name that could not be parsed back the same. */
export function spiffeId(trustDomain: string, service: string): string {
  if (!TRUST_DOMAIN.test(trustDomain)) throw new Error(`not a SPIFFE trust domain: ${JSON.stringify(trustDomain)}`);
  if (!SERVICE_NAME.test(service)) throw new Error(`not a service name: ${JSON.stringify(service)}`);
  return `spiffe://${trustDomain}/${service}`;
}

/**
 * The URI entries of a subjectAltName as Node prints it (`DNS:a, IP Address:1.2.3.4, URI:spiffe://…`;
 * a value with a comma or quote is JSON-quoted since Node 17.3). Undefined when the text does not
 * parse: the caller then trusts none of it.
 */
function uriSans(subjectAltName: string | undefined): string[] | undefined {
  if (!subjectAltName) return [];
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,"]*)(?:, |$)/y;
  const uris: string[] = [];
  while (entry.lastIndex < subjectAltName.length) {
    const match = entry.exec(subjectAltName);
    if (!match) return undefined;
    const [, type, raw = ''] = match;
    if (type === 'URI') uris.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return uris;
}

/**
 * The service a verified certificate names in `trustDomain`, or undefined: exactly one URI SAN
 * (X509-SVID §2), `spiffe://<trustDomain>/<one segment>`. Another trust domain, a longer path, no
 * URI or several are nobody; the CN is never looked at.
 */
export function serviceInTrustDomain(subjectAltName: string | undefined, trustDomain: string): string | undefined {
  const uris = uriSans(subjectAltName);
  if (uris?.length !== 1) return undefined;
  const prefix = `spiffe://${trustDomain}/`;
  const uri = uris[0]!;
  if (!uri.startsWith(prefix)) return undefined;
  const service = uri.slice(prefix.length);
  return SERVICE_NAME.test(service) ? service : undefined;
}
