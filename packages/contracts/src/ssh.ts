import { z } from 'zod';
import { TenantId } from './common.ts';

/**
 * One OpenSSH public key line ("ssh-ed25519 AAAA… comment"), as `ssh-keygen` writes it: one line of
 * printable text. Whether its type and key are acceptable is the server's to say (@keyway/ssh parses it
 * there: PAS for certificates, the IdP for registered keys).
 */
export const SshPublicKeyLine = z
  .string()
  .trim()
  .min(1)
  .max(8192)
  .regex(/^[\x20-\x7e]+$/, 'must be one OpenSSH public key line ("ssh-ed25519 AAAA…")')
  .describe('an OpenSSH public key line: ssh-ed25519 or ecdsa-sha2-nistp256');

/** A host certificate principal: a DNS name (a leading "*." for a wildcard) or an IP address, as clients name the host they connect to. */
const Hostname = z.union([
  z
    .string()
    .max(253)
    .regex(/^(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/, 'must be a host name'),
  z.ipv4(),
  z.ipv6(),
]);

export const SshCertificateRequest = z.object({ public_key: SshPublicKeyLine });
export type SshCertificateRequest = z.input<typeof SshCertificateRequest>;

export const HostCertificateRequest = z.object({ public_key: SshPublicKeyLine, hostnames: z.array(Hostname).min(1).max(32) });
export type HostCertificateRequest = z.input<typeof HostCertificateRequest>;

/** A certificate PAS signed: the OpenSSH line (`<type>-cert-v01@openssh.com AAAA… <key id>`, what `<key>-cert.pub` holds) and its signed fields. */
export const SshCertificateResponse = z.object({
  certificate: z.string(),
  /** the 64-bit serial, in decimal (as `ssh-keygen -L` prints it) */
  serial: z.string().regex(/^\d{1,20}$/),
  key_id: z.string(),
  principals: z.array(z.string()),
  valid_after: z.iso.datetime(),
  valid_before: z.iso.datetime(),
});
export type SshCertificateResponse = z.infer<typeof SshCertificateResponse>;

const KEY_ID_PREFIX = 'keyway';

/**
 * The key id of a user certificate: `keyway:<tenant>:<user id>`. It is signed, so a server that trusts
 * the CA reads the holder's tenant from it (the principal is the user id alone, the SFTP user name).
 */
export const sshUserKeyId = (tenant: string, sub: string): string => `${KEY_ID_PREFIX}:${tenant}:${sub}`;

/** The tenant and user id of a user certificate's key id; undefined when it is not one PAS writes. */
export function parseSshUserKeyId(keyId: string): { tenant: string; sub: string } | undefined {
  const [prefix, tenant, ...rest] = keyId.split(':');
  const sub = rest.join(':');
  if (prefix !== KEY_ID_PREFIX || !TenantId.safeParse(tenant).success || sub === '') return undefined;
  return { tenant: tenant!, sub };
}
