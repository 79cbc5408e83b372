import { Option, type Command } from 'commander';
import { z } from 'zod';
import { topicClient } from '@keyway/clients';
import { ReplayRequest, ResubmitDeadLetters, SubscriptionName, type ReplayStatus } from '@keyway/contracts';
import type { CliContext } from '../context.ts';
import { CliError, EXIT, usageError } from '../exit-codes.ts';
import { feedArgs, parseArg, tenantArg } from '../input.ts';
import { fields, list, table } from '../output.ts';

const POLL_MS = 1000;

/** Where a replay is started and asked after: the entitlement service as the operator, or the topic service with a subscriber's listen key. */
interface Replays {
  start(request: ReplayRequest): Promise<ReplayStatus>;
  status(replayId: string): Promise<ReplayStatus>;
}

async function replaysFor(context: CliContext, tenant: string, feed: string, subscription: string, sasKey: string | undefined): Promise<Replays> {
  if (sasKey) {
    const topic = topicClient(await context.clientOptions('topic', false));
    return {
      start: (request) => topic.replay(sasKey, tenant, feed, subscription, { fromTime: request.from_time, fromOffset: request.from_offset }),
      status: (replayId) => topic.replayStatus(sasKey, tenant, feed, subscription, replayId),
    };
  }
  const entitlement = await context.entitlement();
  return {
    start: (request) => entitlement.replay(tenant, feed, subscription, request),
    status: (replayId) => entitlement.replayStatus(tenant, feed, subscription, replayId),
  };
}

const replayFields = (status: ReplayStatus) =>
  fields([
    ['replay', status.replay_id],
    ['subscription', `${status.tenant}/${status.topic}/${status.subscription}`],
    ['from', status.from_time ?? `offset ${status.from_offset}`],
    ['status', status.status],
    ['copied', status.copied],
    ['offsets', status.first_offset === undefined ? '-' : `${status.first_offset}..${status.last_offset}`],
    ['started', status.started_at],
    ['finished', status.finished_at ?? '-'],
    ['error', status.error ?? '-'],
  ]);

export function register(program: Command, context: CliContext): void {
  const feed = program.command('feed').description('feeds of a tenant: grant, revoke, list, replay');

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
    .command('replay')
    .description('replay a feed’s retained batches into one of its subscriptions, from a time or a stream offset; prints the replay’s status')
    .argument('<tenant>')
    .argument('<feed>')
    .argument('<subscription>')
    .option('--from <time>', 'ISO 8601 time: the batches published at or after it')
    .option('--from-offset <n>', 'the topic stream’s offset to start at (inclusive), e.g. last_offset + 1 of an interrupted replay')
    .option('--wait', 'poll the status until the replay is no longer running (exit 6 when it failed or was interrupted)')
    .addOption(
      new Option(
        '--sas-key <key>',
        'a subscriber’s own listen SAS key for the feed: the replay is asked of the topic service (--topic-url) with it instead of the entitlement service as the operator',
      ).env('KEYWAY_SAS_KEY'),
    )
    .addHelpText(
      'after',
      '\nA time older than the feed’s retention replays what is kept. Later batches reach the subscription as usual. As the operator, the replay is recorded in the entitlement trail as replay.requested.',
    )
    .action(async (tenant: string, name: string, subscriptionArg: string, options: { from?: string; fromOffset?: string; wait?: boolean; sasKey?: string }) => {
      const [t, f] = feedArgs(tenant, name);
      const subscription = parseArg(SubscriptionName, subscriptionArg, 'subscription');
      if ((options.from === undefined) === (options.fromOffset === undefined)) throw usageError('give exactly one of --from and --from-offset');
      const request = parseArg(
        ReplayRequest,
        options.from === undefined
          ? { from_offset: parseArg(z.coerce.number().int().nonnegative(), options.fromOffset, '--from-offset') }
          : { from_time: parseArg(z.coerce.date(), options.from, '--from').toISOString() },
        'replay',
      );
      const replays = await replaysFor(context, t, f, subscription, options.sasKey);
      let status = await replays.start(request);
      if (options.wait) {
        while (status.status === 'running') {
          context.progress(`replay ${status.replay_id}: ${status.copied} batches copied`);
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          status = await replays.status(status.replay_id);
        }
      }
      const final = status;
      context.print(final, () => replayFields(final));
      if (final.status === 'failed' || final.status === 'interrupted')
        throw new CliError(`replay ${final.replay_id} ${final.status}${final.last_offset === undefined ? '' : `: ask again with --from-offset ${final.last_offset + 1}`}`, EXIT.unavailable);
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
