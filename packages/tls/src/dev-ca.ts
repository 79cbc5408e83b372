/**
 * Local development PKI: a throw-away certificate authority plus one leaf certificate per service,
 * used for TLS and mutual TLS between the services started by the dev launcher. Built with
 * node-forge (not the openssl CLI) because the target machine may only have Node and npm.
 *
 * Nothing here is meant for production: the CA key lives unencrypted next to the certificates.
 */
import { X509Certificate, createPrivateKey, generateKeyPair, generateKeyPairSync, randomBytes, sign as nodeSign } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { DEFAULT_TRUST_DOMAIN, serviceInTrustDomain, spiffeId } from './spiffe.ts';

export interface CertPair {
  /** PEM certificate */
  certPem: string;
  /** PEM private key (PKCS#8, unencrypted) */
  keyPem: string;
}

/** the CA's pair; a distinct name so signatures say which pair a function wants */
export interface DevCa extends CertPair {}

export interface IssueCertOptions {
  /** subject CN, for people reading the certificate; identity is the SPIFFE URI (`uris`), never the CN */
  commonName: string;
  /** subjectAltName URI entries; a service certificate has exactly one, its SPIFFE ID (spiffe.ts) */
  uris?: string[];
  /** subjectAltName DNS entries; default ['localhost'] */
  dnsNames?: string[];
  /** subjectAltName IP entries (IPv4 or IPv6); default ['127.0.0.1', '::1'] */
  ipAddresses?: string[];
  /** validity in hours; default 12 (LEAF_HOURS), capped at the CA's own expiry */
  hours?: number;
  /** validity in days, instead of hours */
  days?: number;
}

/** How ensureDevPki issues service certificates. */
interface DevPkiOptions {
  /** the SPIFFE trust domain the certificates name (spiffe://<trustDomain>/<name>); default "keyway" */
  trustDomain?: string;
  /** lifetime of a service certificate in hours (default 12); renewed once less than half of it remains */
  leafHours?: number;
}

export interface DevPki {
  ca: CertPair;
  /** one pair per requested service name */
  certs: Record<string, CertPair>;
}

const DEV_CA_COMMON_NAME = 'Keyway Development CA';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const CA_DAYS = 365;
const HOUR_MS = 3_600_000;
/** Short-lived on purpose: a copied service certificate is someone else's identity for hours, not weeks. */
const LEAF_HOURS = 12;
const DEFAULT_DNS_NAMES = ['localhost'];
const DEFAULT_IP_ADDRESSES = ['127.0.0.1', '::1'];
/** ensureDevPki regenerates a CA that expires sooner than this (leaves: at half their lifetime) */
const MIN_REMAINING_MS = DAY_MS;

const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

// ---------------------------------------------------------------------------------------------
// key generation and signing
// ---------------------------------------------------------------------------------------------

interface KeyMaterial {
  /** PKCS#8 PEM */
  keyPem: string;
  /** SPKI PEM */
  publicKeyPem: string;
}

const RSA_OPTIONS = {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
} as const;

// Keys come from Node's OpenSSL: forge's pure-JS RSA key generation takes seconds per key.
function generateKeySync(): KeyMaterial {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', RSA_OPTIONS);
  return { keyPem: privateKey, publicKeyPem: publicKey };
}

const generateKeyPairAsync = promisify(generateKeyPair);

// The async variant runs on the libuv thread pool, so several keys are generated in parallel.
async function generateKeyAsync(): Promise<KeyMaterial> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', RSA_OPTIONS);
  return { keyPem: privateKey, publicKeyPem: publicKey };
}

/**
 * Signs the certificate with SHA-256/RSA. Equivalent to forge's `cert.sign(key, sha256)`, but the
 * RSA operation is done by Node's crypto (OpenSSL) instead of forge's pure-JS big integers.
 */
function signCert(cert: forge.pki.Certificate, signerKeyPem: string): void {
  cert.siginfo.algorithmOid = cert.signatureOid = forge.pki.oids.sha256WithRSAEncryption!;
  // getTBSCertificate is public in forge but missing from @types/node-forge
  const { getTBSCertificate } = forge.pki as unknown as {
    getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
  };
  cert.tbsCertificate = getTBSCertificate(cert);
  const tbs = forge.asn1.toDer(cert.tbsCertificate).getBytes();
  const signature = nodeSign('sha256', Buffer.from(tbs, 'binary'), createPrivateKey(signerKeyPem));
  // forge keeps binary data as "binary strings" (one char per byte)
  cert.signature = signature.toString('binary');
}

/**
 * 16 random bytes as hex. The first byte is forced into 0x01..0x7f: below 0x80 keeps the DER
 * INTEGER positive, and non-zero avoids a leading zero byte, which would be a non-minimal encoding.
 */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString('hex');
}

// ---------------------------------------------------------------------------------------------
// certificate construction
// ---------------------------------------------------------------------------------------------

function buildCa(key: KeyMaterial, now = Date.now()): DevCa {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicKeyPem);
  cert.serialNumber = randomSerial();
  // backdated a minute so a slightly lagging clock (another process, a VM) still accepts it
  cert.validity.notBefore = new Date(now - MINUTE_MS);
  cert.validity.notAfter = new Date(now + CA_DAYS * DAY_MS);
  const subject = [{ name: 'commonName', value: DEV_CA_COMMON_NAME }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    // pathLen 0: this CA only ever signs leaves
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCert(cert, key.keyPem);
  return { certPem: forge.pki.certificateToPem(cert), keyPem: key.keyPem };
}

function buildLeaf(ca: CertPair, key: KeyMaterial, options: IssueCertOptions, now = Date.now()): CertPair {
  const { commonName, dnsNames = DEFAULT_DNS_NAMES, ipAddresses = DEFAULT_IP_ADDRESSES, uris = [] } = options;
  if (!commonName) throw new Error('issueCert: commonName is required');
  if (options.days !== undefined && (!Number.isFinite(options.days) || options.days <= 0)) throw new Error(`issueCert: days must be > 0, got ${options.days}`);
  if (options.hours !== undefined && (!Number.isFinite(options.hours) || options.hours <= 0)) throw new Error(`issueCert: hours must be > 0, got ${options.hours}`);
  const lifetimeMs = options.days !== undefined ? options.days * DAY_MS : (options.hours ?? LEAF_HOURS) * HOUR_MS;

  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicKeyPem);
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(now - MINUTE_MS);
  // a leaf outliving its CA would fail verification anyway; cap it so the expiry date is honest
  cert.validity.notAfter = new Date(Math.min(now + lifetimeMs, caCert.validity.notAfter.getTime()));
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);

  const altNames = [
    ...dnsNames.map((value) => ({ type: 2, value })),
    ...uris.map((value) => ({ type: 6, value })),
    // raw bytes: forge's own IPv6 parser is lenient about malformed input
    ...ipAddresses.map((ip) => ({ type: 7, value: ipToBytes(ip) })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    // both: the same certificate is a server cert and the client cert for mTLS between services
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    // an empty SAN sequence is invalid DER, so omit the extension rather than emit one
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    // explicit bytes: forge's `keyIdentifier: true` would hash the leaf's own key, not the CA's
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  signCert(cert, ca.keyPem);
  return { certPem: forge.pki.certificateToPem(cert), keyPem: key.keyPem };
}

/** IPv4/IPv6 text to network-order bytes as a forge binary string; throws on invalid input */
function ipToBytes(ip: string): string {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number)).toString('binary');
  if (!isIPv6(ip)) throw new Error(`issueCert: not an IP address: ${ip}`);
  let text = ip.replace(/%.*$/, ''); // zone id has no place in a certificate
  // trailing embedded IPv4 (::ffff:1.2.3.4) becomes two hex groups
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...zeros, ...tailGroups];
  const bytes = Buffer.alloc(16);
  for (const [i, group] of groups.entries()) bytes.writeUInt16BE(parseInt(group, 16), i * 2);
  return bytes.toString('binary');
}

// ---------------------------------------------------------------------------------------------
// public API
// ---------------------------------------------------------------------------------------------

/** A new self-signed development CA (RSA 2048, SHA-256, CN "Keyway Development CA", 1 year). */
export function createDevCa(): DevCa {
  return buildCa(generateKeySync());
}

/**
 * A leaf certificate signed by `ca` (SHA-256), usable as TLS server and client certificate.
 * Defaults: SANs localhost / 127.0.0.1 / ::1, no URI (so no service identity), 12 hours.
 */
export function issueCert(ca: DevCa, options: IssueCertOptions): CertPair {
  return buildLeaf(ca, generateKeySync(), options);
}

/** A service certificate: CN and the one SPIFFE URI SAN both name the service. */
export function issueServiceCert(ca: DevCa, name: string, options: DevPkiOptions = {}): CertPair {
  return buildLeaf(ca, generateKeySync(), serviceCertOptions(name, options));
}

const serviceCertOptions = (name: string, { trustDomain = DEFAULT_TRUST_DOMAIN, leafHours = LEAF_HOURS }: DevPkiOptions): IssueCertOptions => ({
  commonName: name,
  uris: [spiffeId(trustDomain, name)],
  hours: leafHours,
});

/** CA plus one service certificate per name, in memory only (tests). */
export function createEphemeralPki(names: string[], options: DevPkiOptions = {}): DevPki {
  const ca = createDevCa();
  const certs: Record<string, CertPair> = {};
  for (const name of new Set(names)) certs[name] = issueServiceCert(ca, name, options);
  return { ca, certs };
}

/**
 * Loads the development PKI from `dir` (ca.crt/ca.key, <name>.crt/<name>.key), regenerating what
 * is missing, unparsable, not matching, or past renewal: a CA expiring within a day, a service
 * certificate past half its lifetime, lacking its SPIFFE ID, or longer-lived than `leafHours`.
 * - a bad CA regenerates the CA and therefore every leaf (old leaves no longer chain to it);
 * - with a good CA, only the bad leaves are regenerated; the others are reused as they are.
 * The directory is created with mode 0700, keys are written with mode 0600 (atomically, via a
 * temporary file and rename, so a crash never leaves a half-written file).
 */
export async function ensureDevPki(dir: string, names: string[], options: DevPkiOptions = {}): Promise<DevPki> {
  const { trustDomain = DEFAULT_TRUST_DOMAIN, leafHours = LEAF_HOURS } = options;
  const unique = [...new Set(names)];
  for (const name of unique) assertFileSafeName(name);
  await mkdir(dir, { recursive: true, mode: 0o700 });

  const now = Date.now();
  const minValidUntil = now + MIN_REMAINING_MS;

  const loadedCa = await loadPair(dir, 'ca');
  const caOk = loadedCa !== null && isUsableCa(loadedCa, now, minValidUntil);
  const loadedLeaves = new Map<string, CertPair | null>();
  for (const name of unique) loadedLeaves.set(name, await loadPair(dir, name));

  const leafOk = (name: string): boolean => {
    const leaf = loadedLeaves.get(name);
    return caOk && leaf != null && isUsableLeaf(leaf, loadedCa!, { name, trustDomain, lifetimeMs: leafHours * HOUR_MS }, now);
  };
  const stale = unique.filter((name) => !leafOk(name));

  // all keys needed at once, generated in parallel on the thread pool
  const [caKey, leafKeys] = await Promise.all([caOk ? null : generateKeyAsync(), Promise.all(stale.map(() => generateKeyAsync()))]);

  let ca: CertPair;
  if (caKey === null) {
    ca = loadedCa!;
  } else {
    ca = buildCa(caKey, now);
    await writePair(dir, 'ca', ca);
  }

  const certs: Record<string, CertPair> = {};
  const staleSet = new Set(stale);
  for (const name of unique) {
    if (!staleSet.has(name)) {
      certs[name] = loadedLeaves.get(name)!;
      await tightenKeyMode(keyPath(dir, name));
    }
  }
  if (caOk) await tightenKeyMode(keyPath(dir, 'ca'));
  for (const [i, name] of stale.entries()) {
    const leaf = buildLeaf(ca, leafKeys[i]!, serviceCertOptions(name, { trustDomain, leafHours }), now);
    await writePair(dir, name, leaf);
    certs[name] = leaf;
  }
  // keep the caller's order in the returned record
  return { ca, certs: Object.fromEntries(unique.map((name) => [name, certs[name]!])) };
}

// ---------------------------------------------------------------------------------------------
// validation and file handling for ensureDevPki
// ---------------------------------------------------------------------------------------------

function assertFileSafeName(name: string): void {
  // names become file names; "ca" would overwrite the CA's own files
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name === 'ca') {
    throw new Error(`ensureDevPki: invalid certificate name ${JSON.stringify(name)}`);
  }
}

/** Node 20's X509Certificate has no validToDate yet; its text form is "Nov 26 05:15:00 2026 GMT" */
function notAfter(x509: X509Certificate): number {
  return Date.parse(x509.validTo);
}
function notBefore(x509: X509Certificate): number {
  return Date.parse(x509.validFrom);
}

function isUsableCa(pair: CertPair, now: number, minValidUntil: number): boolean {
  try {
    const x509 = new X509Certificate(pair.certPem);
    return x509.ca && x509.checkIssued(x509) && x509.verify(x509.publicKey) && x509.checkPrivateKey(createPrivateKey(pair.keyPem)) && notBefore(x509) <= now && notAfter(x509) >= minValidUntil;
  } catch {
    return false; // unparsable PEM: regenerate
  }
}

interface Expected {
  name: string;
  trustDomain: string;
  lifetimeMs: number;
}

/** Renewal at half life, as cert-manager's renewBefore does: a running service has the other half to pick the new files up. */
function isUsableLeaf(pair: CertPair, ca: CertPair, { name, trustDomain, lifetimeMs }: Expected, now: number): boolean {
  try {
    const x509 = new X509Certificate(pair.certPem);
    const caX509 = new X509Certificate(ca.certPem);
    const eku = x509.keyUsage ?? []; // Node names the extended key usage list "keyUsage"
    return (
      !x509.ca &&
      x509.checkIssued(caX509) &&
      x509.verify(caX509.publicKey) &&
      x509.checkPrivateKey(createPrivateKey(pair.keyPem)) &&
      x509.subject.split('\n').includes(`CN=${name}`) &&
      serviceInTrustDomain(x509.subjectAltName, trustDomain) === name &&
      eku.includes(OID_SERVER_AUTH) &&
      eku.includes(OID_CLIENT_AUTH) &&
      notBefore(x509) <= now &&
      // a minute of slack: notBefore is backdated by one
      notAfter(x509) - notBefore(x509) <= lifetimeMs + 2 * MINUTE_MS &&
      notAfter(x509) - now >= lifetimeMs / 2
    );
  } catch {
    return false;
  }
}

function certPath(dir: string, name: string): string {
  return path.join(dir, `${name}.crt`);
}
function keyPath(dir: string, name: string): string {
  return path.join(dir, `${name}.key`);
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function loadPair(dir: string, name: string): Promise<CertPair | null> {
  const [certPem, keyPem] = await Promise.all([readIfExists(certPath(dir, name)), readIfExists(keyPath(dir, name))]);
  return certPem !== null && keyPem !== null ? { certPem, keyPem } : null;
}

async function writePair(dir: string, name: string, pair: CertPair): Promise<void> {
  // key first: a crash in between leaves a cert/key mismatch, which the next run detects
  await writeFileAtomic(keyPath(dir, name), pair.keyPem, 0o600);
  await writeFileAtomic(certPath(dir, name), pair.certPem, 0o644);
}

/** writeFile's mode only applies to new files; a fresh temp file + rename always gets it */
async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** a reused key that someone made group/world readable is put back to 0600 */
async function tightenKeyMode(file: string): Promise<void> {
  if (process.platform === 'win32') return; // POSIX modes do not apply
  const { mode } = await stat(file);
  if ((mode & 0o077) !== 0) await chmod(file, 0o600);
}

/**
 * Keeps the development PKI in `dir` renewed for a long-running process (the dev launcher, a test
 * run): every `everyMs` (default a tenth of the lifetime) it does what ensureDevPki does, which
 * rewrites a certificate past half its lifetime atomically; running services pick the new files up
 * (watchTls). A failed round is reported to `onError` and retried on the next. Returns stop.
 */
export function renewDevPki(dir: string, names: string[], options: DevPkiOptions & { everyMs?: number; onError?: (err: unknown) => void } = {}): () => void {
  const everyMs = options.everyMs ?? ((options.leafHours ?? LEAF_HOURS) * HOUR_MS) / 10;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    ensureDevPki(dir, names, options)
      .catch((err: unknown) => options.onError?.(err))
      .finally(() => {
        running = false;
      });
  }, everyMs);
  // never what keeps a process alive
  timer.unref();
  return () => clearInterval(timer);
}
