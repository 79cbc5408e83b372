import type { Command } from 'commander';
import { z } from 'zod';
import { SubscriptionName } from '@keyway/contracts';
import type { CliContext } from '../context.ts';
import { feedArgs, parseArg } from '../input.ts';
import { table } from '../output.ts';

export function register(program: Command, context: CliContext): void {
  const subscription = program.command('subscription').description('named subscriptions of a tenant feed (the operator’s inventory; the topic service declares its queues when it is created)');

  subscription
    .command('add')
    .description('list a subscription name (exit 0 when it is listed already)')
    .argument('<tenant>')
    .argument('<feed>')
    .argument('<name>')
    .option('--start-at <time>', 'ISO 8601 time: the new subscription also gets the feed’s batches retained since then (a replay)')
    .action(async (tenant: string, feed: string, name: string, options: { startAt?: string }) => {
      const startAt = options.startAt === undefined ? undefined : parseArg(z.coerce.date(), options.startAt, '--start-at');
      const added = await (await context.entitlement()).createSubscription(...feedArgs(tenant, feed), parseArg(SubscriptionName, name, 'name'), { startAt });
      context.print(added, () => `${added.created ? 'Added' : 'Already listed:'} subscription ${added.name} of ${added.tenant}/${added.feed}.`);
    });

  subscription
    .command('list')
    .description('list the subscriptions of a tenant feed')
    .argument('<tenant>')
    .argument('<feed>')
    .action(async (tenant: string, feed: string) => {
      const subscriptions = await (await context.entitlement()).listSubscriptions(...feedArgs(tenant, feed));
      context.print(subscriptions, () =>
        table(subscriptions.subscriptions, [
          ['name', (s) => s.name],
          ['feed', (s) => s.feed],
          ['created', (s) => s.createdAt],
        ]),
      );
    });

  subscription
    .command('remove')
    .description('drop a subscription name from the inventory')
    .argument('<tenant>')
    .argument('<feed>')
    .argument('<name>')
    .action(async (tenant: string, feed: string, name: string) => {
      const [t, f] = feedArgs(tenant, feed);
      const n = parseArg(SubscriptionName, name, 'name');
      await (await context.entitlement()).deleteSubscription(t, f, n);
      context.print({ tenant: t, feed: f, name: n, removed: true }, () => `Removed subscription ${n} of ${t}/${f}.`);
    });
}
