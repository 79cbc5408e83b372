import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { EntitlementClient } from '@keyway/clients';
import { ClientKeyId, ClientKeyRegistration, CreateUser, Email, Password, ProductId, Role, type User } from '@keyway/contracts';
import { parsePublicKeyLine, SshFormatError } from '@keyway/ssh';
import type { CliContext } from '../context.ts';
import { CliError, EXIT, usageError } from '../exit-codes.ts';
import { collect, parseArg, tenantArg } from '../input.ts';
import { fields, list, table } from '../output.ts';
import { readSecret } from '../prompt.ts';

const showUser = (u: User) =>
  fields([
    ['id', u.id],
    ['tenant', u.tenant],
    ['email', u.email],
    ['roles', list(u.roles)],
    ['products', list(u.products)],
    ['created', u.createdAt],
  ]);

/** Users are named by id, or by email for people typing commands. */
async function resolveUser(client: EntitlementClient, tenant: string, user: string): Promise<string> {
  if (!user.includes('@')) return user;
  const email = parseArg(Email, user, 'user');
  const found = (await client.listUsers(tenant)).users.find((u) => u.email === email);
  if (!found) throw new CliError(`no user ${email} in tenant ${tenant}`, EXIT.notFound);
  return found.id;
}

/** An OpenSSH public key line, as `ssh-keygen` writes `<key>.pub`; any type, so an RSA key is refused by name. */
const OPENSSH_LINE = /^(ssh|ecdsa-sha2)-\S+\s/;

/**
 * A PEM key (public, or private: only its public half is sent), a JWK in a JSON file, or an OpenSSH
 * public key line (ssh-ed25519, ecdsa-sha2-nistp256), as the public JWK the API takes. The same key
 * then signs private_key_jwt assertions and authenticates to the releases' SFTP front.
 */
function publicJwkFrom(file: string): object {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const trimmed = text.trimStart();
  try {
    const key = OPENSSH_LINE.test(trimmed)
      ? parsePublicKeyLine(trimmed).key
      : trimmed.startsWith('{')
        ? createPublicKey({ key: JSON.parse(text) as JsonWebKey, format: 'jwk' })
        : createPublicKey(text);
    return parseArg(ClientKeyRegistration, { jwk: key.export({ format: 'jwk' }) }, 'key').jwk;
  } catch (err) {
    if (err instanceof CliError) throw err;
    if (err instanceof SshFormatError) throw usageError(`${file}: ${err.message}`);
    throw usageError(`${file} holds no EC P-256 or Ed25519 key in PEM, JWK or OpenSSH (ssh-ed25519, ecdsa-sha2-nistp256) form`);
  }
}

export function register(program: Command, context: CliContext): void {
  const user = program.command('user').description('users of a tenant: add, list, show, roles, products, password, remove, key add|remove');
  const rolesArg = (values: string[]) => values.map((r) => parseArg(Role, r, 'role'));
  /** The admin client, the checked tenant id and the user's id (looked up when given by email). */
  const target = async (tenant: string, user: string) => {
    const client = await context.entitlement();
    const t = tenantArg(tenant);
    return { client, t, userId: await resolveUser(client, t, user) };
  };

  user
    .command('add')
    .description('add a user to a tenant (without --with-password, the user logs in with a registered key or once a password is set)')
    .argument('<tenant>')
    .argument('<email>')
    .option('--role <role>', `a role (repeatable; ${Role.options.join(', ')}; default full-control)`, collect)
    .option('--product <product>', 'a product the user’s uploader and publisher roles apply to (repeatable)', collect)
    .option('--with-password', 'set a password: typed without echo, or the first line of standard input')
    .action(async (tenant: string, email: string, options: { role?: string[]; product?: string[]; withPassword?: boolean }) => {
      const password = options.withPassword ? parseArg(Password, await readSecret('Password for the new user: '), 'password') : undefined;
      const input = parseArg(CreateUser, { email, password, roles: options.role ?? ['full-control'], products: options.product ?? [] }, 'user');
      const created = await (await context.entitlement()).createUser(tenantArg(tenant), input);
      context.print(created, () => `Added user ${created.email} (${created.id}).\n${showUser(created)}`);
    });

  user
    .command('list')
    .description('list the users of a tenant')
    .argument('<tenant>')
    .action(async (tenant: string) => {
      const users = await (await context.entitlement()).listUsers(tenantArg(tenant));
      context.print(users, () =>
        table(users.users, [
          ['id', (u) => u.id],
          ['email', (u) => u.email],
          ['roles', (u) => list(u.roles)],
          ['products', (u) => list(u.products)],
          ['created', (u) => u.createdAt],
        ]),
      );
    });

  user
    .command('show')
    .description('show a user (by id or email)')
    .argument('<tenant>')
    .argument('<user>', 'user id or email')
    .action(async (tenant: string, id: string) => {
      const { client, t, userId } = await target(tenant, id);
      const found = await client.getUser(t, userId);
      context.print(found, () => showUser(found));
    });

  user
    .command('roles')
    .description('set the full set of a user’s roles (removed roles end the user’s sessions)')
    .argument('<tenant>')
    .argument('<user>', 'user id or email')
    .argument('<roles...>', Role.options.join(', '))
    .action(async (tenant: string, id: string, roles: string[]) => {
      const { client, t, userId } = await target(tenant, id);
      const updated = await client.setRoles(t, userId, rolesArg(roles));
      context.print(updated, () => showUser(updated));
    });

  user
    .command('products')
    .description('set the full list of products a user’s uploader and publisher roles apply to (none given = none)')
    .argument('<tenant>')
    .argument('<user>', 'user id or email')
    .argument('[products...]', 'product ids')
    .action(async (tenant: string, id: string, products: string[]) => {
      const { client, t, userId } = await target(tenant, id);
      const updated = await client.updateUser(t, userId, { products: products.map((p) => parseArg(ProductId, p, 'product')) });
      context.print(updated, () => showUser(updated));
    });

  user
    .command('password')
    .description('set or reset a user’s password (12+ characters; typed without echo, or the first line of standard input); ends the user’s sessions')
    .argument('<tenant>')
    .argument('<user>', 'user id or email')
    .action(async (tenant: string, id: string) => {
      const { client, t, userId } = await target(tenant, id);
      await client.setPassword(t, userId, parseArg(Password, await readSecret('New password: '), 'password'));
      context.print({ tenant: t, user: userId, password_set: true }, () => `Password set for ${userId}; the user's sessions were ended.`);
    });

  user
    .command('remove')
    .description('remove a user: its sessions and SAS keys are revoked within seconds')
    .argument('<tenant>')
    .argument('<user>', 'user id or email')
    .action(async (tenant: string, id: string) => {
      const { client, t, userId } = await target(tenant, id);
      await client.deleteUser(t, userId);
      context.print({ tenant: t, user: userId, removed: true }, () => `Removed user ${userId} from ${t}.`);
    });

  const key = user.command('key').description('public keys of passwordless agents (RFC 7523 private_key_jwt), also accepted for SFTP');
  key
    .command('add')
    .description('register (or replace) a user’s public key under a kid')
    .argument('<tenant>')
    .argument('<user>', 'user id or email')
    .argument('<kid>', 'key id the agent names in its assertions')
    .argument('<file>', 'EC P-256 or Ed25519 key: PEM (public, or private: only the public half is sent), JWK JSON, or an OpenSSH public key (id_ed25519.pub, also good for SFTP)')
    .action(async (tenant: string, id: string, kid: string, file: string) => {
      const jwk = publicJwkFrom(file);
      const { client, t, userId } = await target(tenant, id);
      const registered = await client.registerKey(t, userId, parseArg(ClientKeyId, kid, 'kid'), jwk);
      context.print(registered, () => `Registered key ${registered.kid} (${registered.alg}) for ${registered.sub}.`);
    });
  key
    .command('remove')
    .description('remove a user’s public key')
    .argument('<tenant>')
    .argument('<user>', 'user id or email')
    .argument('<kid>')
    .action(async (tenant: string, id: string, kid: string) => {
      const { client, t, userId } = await target(tenant, id);
      await client.removeKey(t, userId, parseArg(ClientKeyId, kid, 'kid'));
      context.print({ tenant: t, user: userId, kid, removed: true }, () => `Removed key ${kid} of ${userId}.`);
    });
}
