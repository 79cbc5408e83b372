import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { feedArgs, tenantArg } from '../input.ts';
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
}
