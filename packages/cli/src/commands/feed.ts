import type { Command } from 'commander';
import { ResubmitDeadLetters, SubscriptionName } from '@keyway/contracts';
import { z } from 'zod';
import type { CliContext } from '../context.ts';
import { feedArgs, parseArg, tenantArg } from '../input.ts';
import { list, table } from '../output.ts';

export function register(program: Command, context: CliContext): void {
  const feed = program.command('feed').description('feeds of a tenant: grant, revoke, list');

  feed
    .command('grant')
    .description('grant a feed to a tenant')
    .argument('<tenant>')
    .argument('<feed>')
    .action(async (tenant: string, name: string) => {
      const updated = await (await context.entitlement()).grantFeed(...feedArgs(tenant, name));
      context.print(updated, () => `Granted ${name} to ${updated.id}; feeds: ${list(updated.feeds)}.`);
    });

  feed
    .command('revoke')
    .description('take a feed away: the sessions and SAS keys that used it are revoked within seconds (idempotent)')
    .argument('<tenant>')
    .argument('<feed>')
    .action(async (tenant: string, name: string) => {
      const [t, f] = feedArgs(tenant, name);
      await (await context.entitlement()).removeFeed(t, f);
      context.print({ tenant: t, feed: f, revoked: true }, () => `Revoked ${f} from ${t}.`);
    });

  feed
    .command('list')
    .description('list a tenant’s feeds with their subscriptions')
    .argument('<tenant>')
    .action(async (tenant: string) => {
      const feeds = await (await context.entitlement()).listFeeds(tenantArg(tenant));
      context.print(feeds, () =>
        table(feeds.feeds, [
          ['feed', (f) => f.name],
          ['subscriptions', (f) => list(f.subscriptions)],
        ]),
      );
    });

  const deadLetters = feed.command('deadletters').description('the dead letters of a feed’s subscriptions');

  deadLetters
    .command('resubmit')
    .description('move a subscription’s dead letters back to it, oldest first, to be delivered again (recorded in the audit trail)')
    .argument('<tenant>')
    .argument('<feed>')
    .argument('<subscription>', '`default` or a listed subscription')
    .option('--max <n>', 'at most this many (1-1000, default 100)')
    .action(async (tenant: string, name: string, subscription: string, options: { max?: string }) => {
      const [t, f] = feedArgs(tenant, name);
      const s = parseArg(SubscriptionName, subscription, 'subscription');
      const max = options.max === undefined ? undefined : parseArg(z.coerce.number().pipe(ResubmitDeadLetters.shape.max.unwrap()), options.max, '--max');
      const resubmitted = await (await context.entitlement()).resubmitDeadLetters(t, f, s, max);
      context.print({ tenant: t, feed: f, subscription: s, resubmitted }, () => `Resubmitted ${resubmitted} dead letter${resubmitted === 1 ? '' : 's'} to ${t}/${f}/${s}.`);
    });
}
