import type { Command } from 'commander';
import { envValue, REDIS_USERS, RedisPassword, redisAclFile, sharedConfig } from '@keyway/kit';
import type { CliContext } from '../context.ts';
import { usageError } from '../exit-codes.ts';
import { parseArg } from '../input.ts';

/** KEYWAY_REDIS_PASSWORD_PAS for user pas. */
const passwordVariable = (user: string) => `KEYWAY_REDIS_PASSWORD_${user.toUpperCase().replaceAll('-', '_')}`;

/** Each user's password from its variable or the file its `_FILE` variable names; a missing one is named, never made up. */
function passwordsFromEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const passwords: Record<string, string> = {};
  const missing: string[] = [];
  for (const user of REDIS_USERS) {
    const name = passwordVariable(user);
    const value = envValue(env, name);
    if (value === undefined) missing.push(name);
    else passwords[user] = parseArg(RedisPassword, value, name);
  }
  if (missing.length > 0) throw usageError(`set ${missing.join(', ')} (or <name>_FILE): every Redis user needs its own password`);
  return passwords;
}

export function register(program: Command, context: CliContext): void {
  const redis = program.command('redis').description('Redis for a deployment: one ACL user per service');

  redis
    .command('acl')
    .description('print users.acl (for redis.conf aclfile): default user off, admin, and each service limited to its own keys')
    .option('--store-prefix <prefix>', 'the deployment’s STORE_PREFIX (default: $STORE_PREFIX, else keyway)')
    .addHelpText(
      'after',
      `\nPasswords: ${REDIS_USERS.map(passwordVariable).join(', ')}, each or its <name>_FILE (at least 24 URL-safe characters:
openssl rand -hex 24); the file holds their SHA-256 only. Each service then connects with
REDIS_URL=redis://<user>:<password>@host:6379 (users: ${REDIS_USERS.join(', ')}).`,
    )
    .action((options: { storePrefix?: string }) => {
      const storePrefix = parseArg(sharedConfig.STORE_PREFIX, options.storePrefix ?? process.env.STORE_PREFIX, '--store-prefix');
      const file = redisAclFile(storePrefix, passwordsFromEnvironment(process.env));
      context.print({ acl: file }, () => file.trimEnd());
    });
}
