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
    ['products', productList(t)],
    ['updated', t.updatedAt],
  ]);

/** product@range, as `tier set --product` takes it. */
const productList = (t: Tier) => list(t.products.map(({ product, versions }) => `${product}@${versions}`));

/** `edr-agent` or `edr-agent@>=1.0.0` (a product id has no "@"): the product and, when given, its versions. */
const productArg = (value: string) => {
  const at = value.indexOf('@');
  return at < 0 ? { product: value } : { product: value.slice(0, at), versions: value.slice(at + 1) };
};

export function register(program: Command, context: CliContext): void {
  const tier = program.command('tier').description('product tiers: set, list, show');

  tier
    .command('set')
    .description('create or replace a tier; the feeds and products of every tenant on it change with it')
    .argument('<tier>')
    .option('--name <name>', 'display name (default: the id)')
    .option('--feed <feed>', 'a feed of the tier (repeatable; none = no feeds)', collect)
    .option('--product <product[@range]>', 'a product its downloaders may download, with a semver range of versions (default *; repeatable; none = no products)', collect)
    .action(async (id: string, options: { name?: string; feed?: string[]; product?: string[] }) => {
      const definition = parseArg(PutTier, { name: options.name ?? id, feeds: options.feed ?? [], products: (options.product ?? []).map(productArg) }, 'tier');
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
          ['products', productList],
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
