import type { Command } from 'commander';
import { PutTier, TierId, type Tier } from '@keyway/contracts';
import type { CliContext } from '../context.ts';
import { collect, parseArg } from '../input.ts';
import { fields, list, table } from '../output.ts';

const showTier = (t: Tier) =>
  fields([
    ['id', t.id],
    ['name', t.name],
    ['feeds', list(t.feeds)],
    ['updated', t.updatedAt],
  ]);

export function register(program: Command, context: CliContext): void {
  const tier = program.command('tier').description('product tiers: set, list, show');

  tier
    .command('set')
    .description('create or replace a tier; the feeds of every tenant on it change with it')
    .argument('<tier>')
    .option('--name <name>', 'display name (default: the id)')
    .option('--feed <feed>', 'a feed of the tier (repeatable; none = no feeds)', collect)
    .action(async (id: string, options: { name?: string; feed?: string[] }) => {
      const definition = parseArg(PutTier, { name: options.name ?? id, feeds: options.feed ?? [] }, 'tier');
      const saved = await (await context.entitlement()).putTier(parseArg(TierId, id, 'tier'), definition);
      context.print(saved, () => `${saved.created ? 'Created' : 'Replaced'} tier ${saved.id}.\n${showTier(saved)}`);
    });

  tier
    .command('list')
    .description('list the product tiers')
    .action(async () => {
      const tiers = await (await context.entitlement()).listTiers();
      context.print(tiers, () =>
        table(tiers.tiers, [
          ['id', (t) => t.id],
          ['name', (t) => t.name],
          ['feeds', (t) => list(t.feeds)],
          ['updated', (t) => t.updatedAt],
        ]),
      );
    });

  tier
    .command('show')
    .description('show a tier')
    .argument('<tier>')
    .action(async (id: string) => {
      const found = await (await context.entitlement()).getTier(parseArg(TierId, id, 'tier'));
      context.print(found, () => showTier(found));
    });
}
