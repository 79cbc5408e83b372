import type { Command } from 'commander';
import { z } from 'zod';
import { Rights, TenantId, TenantKeyName } from '@keyway/contracts';
import { Keyring, rewrapStore, SealError, type RewrapResult } from '@keyway/seal';
import { StoreUnavailableError } from '@keyway/store';
import type { CliContext } from '../context.ts';
import { CliError, EXIT, usageError } from '../exit-codes.ts';
import { parseArg } from '../input.ts';
import { openKeyStores } from '../key-stores.ts';
import { fields, list, table } from '../output.ts';

const KekFile = z.string({ error: 'KEYWAY_KEK_FILE: required, the keyring file PAS and PAC read' }).min(1);

/**
 * KEK rotation, step 3 of 4 (README "Key rotation"): every value sealed in PAS's, PAC's and the IdP's stores
 * moves onto the current KEK. Safe while the services run (compare-and-set per record) and idempotent.
 */
async function rewrapAll(context: CliContext): Promise<void> {
  const keyring = await Keyring.open(KekFile.parse(process.env.KEYWAY_KEK_FILE)).catch((err: unknown) => {
    throw err instanceof SealError ? usageError(err.message) : err;
  });
  const { stores, close } = await openKeyStores(process.env).catch((err: unknown) => {
    throw err instanceof StoreUnavailableError ? new CliError(err.message, EXIT.unavailable) : err;
  });
  try {
    const results: (RewrapResult & { service: string })[] = [];
    for (const { service, store, keyPrefixes } of stores) {
      context.progress(`rewrapping ${service}…`);
      results.push({ service, ...(await rewrapStore(store, keyring, keyPrefixes)) });
    }
    const answer = { kek: keyring.currentId, stores: results };
    context.print(answer, () =>
      [
        `Every sealed value is under KEK ${answer.kek}; KEKs no value is under can now be removed from ${keyring.path}.`,
        table(results, [
          ['service', (r) => r.service],
          ['records', (r) => String(r.records)],
          ['sealed values', (r) => String(r.values)],
          ['moved', (r) => String(r.moved)],
        ]),
      ].join('\n'),
    );
  } finally {
    await close();
  }
}

export function register(program: Command, context: CliContext): void {
  const keys = program.command('keys').description('key rotation: PAS signing keys, tenants’ SAS keys at PAC');

  keys
    .command('rotate')
    .description('rotate PAS’s signing key (--signing) or one of a tenant’s SAS keys at PAC (--tenant, --key)')
    .option('--signing', 'PAS: the published next key starts signing (exit 4 while it is too fresh: retry later)')
    .option('--tenant <tenant>', 'PAC: the tenant whose SAS key to regenerate')
    .option('--key <key>', 'PAC: primary or secondary')
    .addHelpText('after', '\nSAS keys: rotate the secondary, wait one SAS key lifetime (1 day), then rotate the primary (README "Key rotation").')
    .action(async (options: { signing?: boolean; tenant?: string; key?: string }) => {
      if (options.signing === (options.tenant !== undefined)) throw usageError('give either --signing, or --tenant and --key');
      if (options.signing) {
        if (options.key !== undefined) throw usageError('--key goes with --tenant');
        const rotated = await (await context.pas()).rotateSigningKeys();
        context.print(rotated, () =>
          fields([
            ['signing with', rotated.active_kid],
            ['published', list(rotated.published_kids)],
          ]),
        );
        return;
      }
      if (options.key === undefined) throw usageError('--tenant needs --key primary|secondary');
      const tenant = parseArg(TenantId, options.tenant, 'tenant');
      const rotated = await (await context.pac()).rotateSasKey(tenant, parseArg(TenantKeyName, options.key, 'key'));
      context.print(rotated, () => `Rotated the ${rotated.rotated} SAS key of ${rotated.tenant}; new SAS keys are signed with the ${rotated.signing_with}.`);
    });

  keys
    .command('rewrap')
    .description('move every key PAS, PAC and the IdP keep sealed onto the current KEK of KEYWAY_KEK_FILE (reads REDIS_URL and STORE_PREFIX as the services do)')
    .addHelpText(
      'after',
      '\nKEK rotation without downtime: add the new KEK to the keyring file and make it "current", wait a few seconds (the services pick it up), run this, then remove the old KEK. A second run moves nothing.',
    )
    .action(() => rewrapAll(context));

  keys
    .command('policy <tenant> <right>')
    .description('show one of a tenant’s SAS policy keys (listen, send or listen-send), for Azure tooling; each read is audited')
    .addHelpText('after', '\nAzure SDKs mint SAS keys from the key name (the right) and either key, e.g. @azure/core-amqp createSasTokenProvider({ sharedAccessKeyName, sharedAccessKey }).')
    .action(async (tenant: string, right: string) => {
      const policy = await (await context.pac()).sasPolicyKeys(parseArg(TenantId, tenant, 'tenant'), parseArg(Rights, right, 'right'));
      context.print(policy, () =>
        fields([
          ['tenant', policy.tenant],
          ['key name', policy.key_name],
          ['primary key', policy.primary_key],
          ['secondary key', policy.secondary_key],
        ]),
      );
    });

  keys
    .command('list')
    .description('list PAS’s signing keys (public facts only)')
    .action(async () => {
      const ring = await (await context.pas()).signingKeys();
      context.print(ring, () =>
        table(ring.keys, [
          ['kid', (k) => k.kid],
          ['state', (k) => k.state],
          ['published', (k) => (k.published ? 'yes' : 'no')],
          ['created', (k) => k.createdAt],
          ['retire after', (k) => k.retireAfter ?? '-'],
        ]),
      );
    });
}
