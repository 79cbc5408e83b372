import { type KeyObject, randomBytes } from 'node:crypto';
import {
  type SshKeyType,
  type SshPublicKey,
  SshFormatError,
  isKeyType,
  publicKeyFromBlob,
  publicKeyFromKeyObject,
  publicKeyLine,
  readKeyFields,
  signData,
  verifySignature,
  writeKeyFields,
} from './keys.ts';
import { WireError, WireReader, WireWriter } from './wire.ts';

/** OpenSSH certificates (PROTOCOL.certkeys in OpenSSH's sources): the user and host certificates `ssh-keygen -s` makes. */
const CERT_SUFFIX = '-cert-v01@openssh.com';
const TYPE_CODES = { user: 1, host: 2 } as const;
type CertificateType = keyof typeof TYPE_CODES;

export interface CertificateRequest {
  publicKey: SshPublicKey;
  type: CertificateType;
  keyId: string;
  principals: string[];
  validAfter: Date;
  validBefore: Date;
  serial: bigint;
  /** flag extensions (e.g. permit-pty); none by default: an SFTP certificate needs none */
  extensions?: string[];
}

export interface SshCertificate {
  keyType: string;
  publicKey: SshPublicKey;
  serial: bigint;
  type: CertificateType;
  keyId: string;
  principals: string[];
  validAfter: Date;
  validBefore: Date;
  criticalOptions: string[];
  extensions: string[];
  caKey: SshPublicKey;
  blob: Buffer;
}

export type CertificateRefusal = 'malformed' | 'untrusted_ca' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'wrong_type' | 'principal' | 'critical_option';

export class SshCertificateError extends Error {
  constructor(
    readonly reason: CertificateRefusal,
    message: string,
  ) {
    super(message);
  }
}

export const isCertificateType = (keyAlgo: string): boolean => keyAlgo.endsWith(CERT_SUFFIX) && isKeyType(keyAlgo.slice(0, -CERT_SUFFIX.length));

const toSeconds = (date: Date) => BigInt(Math.floor(date.getTime() / 1000));
/** OpenSSH writes "forever" as 2^64−1; a Date holds it as the largest time it can */
const fromSeconds = (seconds: bigint) => new Date(seconds >= 8_640_000_000_000n ? 8_640_000_000_000_000 : Number(seconds) * 1000);

/** Signs a certificate for `request.publicKey` with the CA's private key (Ed25519 or P-256). */
export function signCertificate(caPrivateKey: KeyObject, request: CertificateRequest): { blob: Buffer; line: string } {
  if (request.principals.length === 0) throw new SshFormatError('a certificate without principals is valid for every principal: name at least one');
  if (request.validBefore <= request.validAfter) throw new SshFormatError('validBefore must be after validAfter');
  const caKey = publicKeyFromKeyObject(caPrivateKey);
  const keyFields = new WireWriter();
  const keyType = writeKeyFields(keyFields, request.publicKey.key);
  const principals = new WireWriter();
  for (const principal of request.principals) principals.bytes(principal);
  const extensions = new WireWriter();
  // sorted, each with empty data: how OpenSSH writes flag extensions
  for (const name of [...new Set(request.extensions ?? [])].sort()) extensions.bytes(name).bytes(Buffer.alloc(0));
  const body = new WireWriter()
    .bytes(`${keyType}${CERT_SUFFIX}`)
    .bytes(randomBytes(32))
    .raw(keyFields.toBuffer())
    .uint64(request.serial)
    .uint32(TYPE_CODES[request.type])
    .bytes(request.keyId)
    .bytes(principals.toBuffer())
    .uint64(toSeconds(request.validAfter))
    .uint64(toSeconds(request.validBefore))
    .bytes(Buffer.alloc(0))
    .bytes(extensions.toBuffer())
    .bytes(Buffer.alloc(0))
    .bytes(caKey.blob)
    .toBuffer();
  const blob = Buffer.concat([body, new WireWriter().bytes(signData(caPrivateKey, body)).toBuffer()]);
  return { blob, line: `${keyType}${CERT_SUFFIX} ${blob.toString('base64')}` };
}

interface Parsed extends SshCertificate {
  signed: Buffer;
  signature: Buffer;
}

function parse(blob: Buffer): Parsed {
  try {
    const reader = new WireReader(blob);
    const keyType = reader.text();
    if (!isCertificateType(keyType)) throw new SshCertificateError('malformed', `not a supported certificate type: ${JSON.stringify(keyType.slice(0, 64))}`);
    const plainType = keyType.slice(0, -CERT_SUFFIX.length) as SshKeyType;
    reader.bytes(); // nonce
    const fieldsStart = reader.position;
    readKeyFields(plainType, reader);
    const keyBlob = Buffer.concat([new WireWriter().bytes(plainType).toBuffer(), blob.subarray(fieldsStart, reader.position)]);
    const serial = reader.uint64();
    const typeCode = reader.uint32();
    const type = typeCode === TYPE_CODES.user ? 'user' : typeCode === TYPE_CODES.host ? 'host' : undefined;
    if (type === undefined) throw new SshCertificateError('malformed', `unknown certificate type ${typeCode}`);
    const keyId = reader.text();
    const principals = reader.textList();
    const validAfter = fromSeconds(reader.uint64());
    const validBefore = fromSeconds(reader.uint64());
    const criticalOptions = reader.names();
    const extensions = reader.names();
    reader.bytes(); // reserved
    const caKey = publicKeyFromBlob(reader.bytes());
    const signed = blob.subarray(0, reader.position);
    const signature = reader.bytes();
    reader.end();
    return { keyType, publicKey: publicKeyFromBlob(keyBlob), serial, type, keyId, principals, validAfter, validBefore, criticalOptions, extensions, caKey, blob: Buffer.from(blob), signed, signature };
  } catch (err) {
    if (err instanceof WireError || err instanceof SshFormatError) throw new SshCertificateError('malformed', `malformed certificate: ${err.message}`);
    throw err;
  }
}

/** The certificate's fields, read but not trusted: verifyCertificate is what accepts one. */
export function parseCertificate(blob: Buffer): SshCertificate {
  const { signed: _signed, signature: _signature, ...certificate } = parse(blob);
  return certificate;
}

export interface VerifyOptions {
  /** the CA keys whose certificates are accepted */
  trusted: SshPublicKey[];
  type: CertificateType;
  /** the principal the certificate must name (the SSH user name, or the host name) */
  principal?: string;
  now?: Date;
  /** tolerance for clocks that disagree, both ends of the window (default 60 s) */
  skewSec?: number;
}

/**
 * A certificate accepted as OpenSSH's sshd accepts one: signed by a trusted CA, of the right type,
 * inside its validity window, naming the principal, and with no critical option this server cannot
 * honour (an unknown critical option must refuse the certificate). Throws SshCertificateError with the reason.
 */
export function verifyCertificate(blob: Buffer, options: VerifyOptions): SshCertificate {
  const { signed, signature, ...certificate } = parse(blob);
  if (!options.trusted.some((ca) => ca.blob.equals(certificate.caKey.blob))) throw new SshCertificateError('untrusted_ca', 'the certificate is not signed by a trusted certificate authority');
  if (!verifySignature(certificate.caKey, signed, signature)) throw new SshCertificateError('bad_signature', 'the certificate signature does not verify');
  if (certificate.type !== options.type) throw new SshCertificateError('wrong_type', `a ${certificate.type} certificate where a ${options.type} certificate is needed`);
  const now = (options.now ?? new Date()).getTime();
  const skewMs = (options.skewSec ?? 60) * 1000;
  if (now + skewMs < certificate.validAfter.getTime()) throw new SshCertificateError('not_yet_valid', `the certificate is valid from ${certificate.validAfter.toISOString()}`);
  if (now - skewMs >= certificate.validBefore.getTime()) throw new SshCertificateError('expired', `the certificate expired at ${certificate.validBefore.toISOString()}`);
  if (options.principal !== undefined && !certificate.principals.includes(options.principal))
    throw new SshCertificateError('principal', `the certificate is not valid for ${JSON.stringify(options.principal)}`);
  if (certificate.criticalOptions.length > 0) throw new SshCertificateError('critical_option', `unsupported critical options: ${certificate.criticalOptions.join(', ')}`);
  return certificate;
}

/** The known_hosts line that trusts a CA's host certificates for `hostPattern` (no trust on first use). */
export const certificateAuthorityLine = (hostPattern: string, ca: SshPublicKey): string => `@cert-authority ${hostPattern} ${publicKeyLine(ca)}`;
