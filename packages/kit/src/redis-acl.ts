import { createHash } from 'node:crypto';
import { storeAclRules } from '@keyway/store';
import { z } from 'zod';

/** The key prefix of a keyspace: serviceResources opens its stores under it and the service's Redis user is held to it. */
export const keyspacePrefix = (storePrefix: string, name: string): string => `${storePrefix}:${name}:`;

/**
 * Every service that keeps hot state in Redis, by the name its keyspace (serviceResources(name, …))
 * and its Redis user carry. None lists keys (Store.keys, which SCAN serves and key patterns do not
 * bound): what is listed is in the system of record. The audit service keeps nothing in Redis; the
 * releases service keeps its browser sessions there.
 */
const SERVICE_USERS = ['idp', 'entitlement', 'pas', 'pac', 'topic', 'releases'];

/** The users a deployment's users.acl holds: the operators' admin and one per service. */
export const REDIS_USERS = ['admin', ...SERVICE_USERS];

/** Unreserved URL characters only, so a password goes into REDIS_URL (redis://<user>:<password>@host:6379) as it is. */
export const RedisPassword = z
  .string()
  .regex(/^[A-Za-z0-9._~-]+$/, 'only A-Z a-z 0-9 . _ ~ - (it goes into REDIS_URL unencoded)')
  .min(24, 'at least 24 characters (e.g. openssl rand -hex 24)');

const sha256 = (password: string) => createHash('sha256').update(password).digest('hex');

/**
 * users.acl (redis.conf `aclfile`) for a deployment: the default user off, `admin` with every right,
 * and each service's user limited to its own keyspace and the store's commands. Passwords are written
 * as their SHA-256 (`#<hex>`), never in clear. `passwords` holds one for each of REDIS_USERS.
 */
export function redisAclFile(storePrefix: string, passwords: Record<string, string>): string {
  const secret = (user: string) => `#${sha256(RedisPassword.parse(passwords[user]))}`;
  const lines = [
    // without this anyone who reaches the port is the all-powerful default user
    'user default off resetpass resetkeys resetchannels -@all',
    `user admin on ${secret('admin')} ~* &* +@all`,
    ...SERVICE_USERS.map((user) => ['user', user, 'on', secret(user), ...storeAclRules({ keyPrefix: keyspacePrefix(storePrefix, user) })].join(' ')),
  ];
  return `${lines.join('\n')}\n`;
}
