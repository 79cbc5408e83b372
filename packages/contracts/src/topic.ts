import { z } from 'zod';
import { FeedName, SafeText, SubscriptionName, TenantId } from './common.ts';

/** The subscription every topic has, listed or not: publishing declares it, so no batch goes to nobody. */
export const DEFAULT_SUBSCRIPTION = 'default';

export const BATCH_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Path parameters of the topic service's Azure Service Bus paths. */
export const TopicPath = z.object({ tenant: TenantId, topic: FeedName });
export const TopicSubscriptionPath = TopicPath.extend({ subscription: SubscriptionName });
export const TopicMessagePath = TopicSubscriptionPath.extend({
  id: z.string().regex(BATCH_ID, 'must be a batch id'),
  lockToken: z.uuid('must be a lock token'),
});

/**
 * A settle another topic-service instance passes on to the instance holding the lock (its AMQP
 * delivery): what the client asked, and the scope its path named, which the holder checks.
 */
export const ForwardedSettle = z.object({
  action: z.enum(['complete', 'abandon', 'renew', 'deadletter']),
  tenant: TenantId,
  topic: FeedName,
  subscription: SubscriptionName,
  deadLetter: z.boolean(),
  messageId: z.string().regex(BATCH_ID),
  /** a dead-letter's reason and description (action `deadletter`), as DeadLetterMessage takes them */
  reason: SafeText(128).optional(),
  description: SafeText(1024, 0).optional(),
});
export type ForwardedSettle = z.infer<typeof ForwardedSettle>;
/** the holder's answer: the new lock deadline after a renew */
export const ForwardedSettleAnswer = z.object({ locked_until: z.string().optional() });
export type ForwardedSettleAnswer = z.infer<typeof ForwardedSettleAnswer>;

export const Batch = z.object({
  id: z.string().regex(BATCH_ID, 'must be 1-128 letters, digits, . _ : -'),
  tenant: TenantId,
  topic: FeedName,
  seq: z.number().int().nonnegative(),
  createdAt: z.string().datetime({ offset: true }),
  contentType: SafeText(100, 0).default('application/json'),
  records: z.array(z.unknown()).max(10_000),
});
export type Batch = z.infer<typeof Batch>;

/** `duplicate: true`: the batch id was accepted within the feed's duplicate window before, and this publish was not delivered again */
export const PublishResponse = z.object({ id: z.string(), tenant: TenantId, topic: FeedName, duplicate: z.literal(true).optional() });
export type PublishResponse = z.infer<typeof PublishResponse>;

export const ReceivedMessage = z.object({
  message_id: z.string(),
  lock_token: z.string(),
  locked_until: z.string(),
  /** hand-outs to a client counting this one: 1, then one more per abandon or expired lock; a restarted, crashed or disconnected topic instance's returns do not count */
  delivery_count: z.number().int(),
  batch: Batch,
  /** on a dead letter: why it was dead-lettered (Azure's DeadLetterReason): MaxDeliveryCountExceeded, TTLExpiredException, MaxQueueLengthExceeded, UnreadableMessage, or a receiver's own */
  dead_letter_reason: z.string().optional(),
  /** on a dead letter: Azure's DeadLetterErrorDescription */
  dead_letter_error_description: z.string().optional(),
});
export type ReceivedMessage = z.infer<typeof ReceivedMessage>;

/** the reason of an explicit dead-letter that names none */
export const DEFAULT_DEAD_LETTER_REASON = 'DeadLetteredByReceiver';

/** An explicit dead-letter (Azure's DeadLetterReason and DeadLetterErrorDescription): printable text only, as it goes into headers and logs. */
export const DeadLetterMessage = z.object({
  reason: SafeText(128).default(DEFAULT_DEAD_LETTER_REASON),
  description: SafeText(1024, 0).optional(),
});
export type DeadLetterMessage = z.input<typeof DeadLetterMessage>;

/** Resubmitting dead letters to their subscription: up to `max` of them, oldest first. */
export const ResubmitDeadLetters = z.object({ max: z.number().int().min(1).max(1000).default(100) }).strict();
export type ResubmitDeadLetters = z.input<typeof ResubmitDeadLetters>;
export const ResubmittedDeadLetters = z.object({ resubmitted: z.number().int().nonnegative() });
export type ResubmittedDeadLetters = z.infer<typeof ResubmittedDeadLetters>;

export const ReceiveQuery = z.object({ timeout: z.coerce.number().int().min(0).max(60).default(30) });

/**
 * A batch handed out without a lock: received and deleted (at most once: gone from the queue before
 * the answer is sent), or peeked (still on the queue, neither locked nor counted).
 */
export const PeekedBatch = z.object({
  message_id: z.string(),
  /** hand-outs to a client so far (peeked: those before this look; received and deleted: counting this one) */
  delivery_count: z.number().int(),
  batch: Batch,
  /** on a dead letter: why it was dead-lettered, and the description given */
  dead_letter_reason: z.string().optional(),
  dead_letter_error_description: z.string().optional(),
});
export type PeekedBatch = z.infer<typeof PeekedBatch>;
export const ReceivedAndDeleted = PeekedBatch.describe('a batch received and deleted: no longer on its queue');
export type ReceivedAndDeleted = z.infer<typeof ReceivedAndDeleted>;
export const PeekQuery = z.object({ count: z.coerce.number().int().min(1).max(100).default(10) });
export const PeekedBatches = z.object({ messages: z.array(PeekedBatch) });
export type PeekedBatches = z.infer<typeof PeekedBatches>;

/** the most messages a stream holds locked at once, so the most one batch complete settles */
export const MAX_PREFETCH = 500;

/**
 * Streaming receive: `prefetch` caps the messages locked and not yet settled by this stream (credit),
 * `timeout` is how long the stream stays open, in seconds.
 */
export const StreamQuery = z.object({
  prefetch: z.coerce.number().int().min(1).max(MAX_PREFETCH).default(50),
  timeout: z.coerce.number().int().min(1).max(300).default(60),
});

/**
 * The stream's body: newline-delimited JSON, one ReceivedMessage per line, an empty line as a
 * heartbeat, and, when the stream fails after it started, one last line with an ErrorBody.
 */
export const NDJSON = 'application/x-ndjson';

/** One lock a batch complete names: the message and the lock token it was received with. */
const HeldLock = z.object({ message_id: TopicMessagePath.shape.id, lock_token: TopicMessagePath.shape.lockToken });

/**
 * A batch complete (issue 12), as an AMQP disposition settles many deliveries at once: up to a
 * stream's whole credit, each lock token once (compared as the server does, case-insensitively).
 */
export const CompleteLocks = z.object({
  locks: z
    .array(HeldLock)
    .min(1)
    .max(MAX_PREFETCH)
    .superRefine((locks, ctx) => {
      const seen = new Set<string>();
      for (const [index, { lock_token }] of locks.entries()) {
        const token = lock_token.toLowerCase();
        if (seen.has(token)) ctx.addIssue({ code: 'custom', path: [index, 'lock_token'], message: 'names a lock token named before' });
        seen.add(token);
      }
    }),
});
export type CompleteLocks = z.infer<typeof CompleteLocks>;

/**
 * Each lock of a batch complete, in request order: `completed`, or `lock_lost` when it did not
 * complete (as a single complete's 410: expired, settled, not this message's, its holder gone or not
 * answering); the message is then delivered again once its lock ends.
 */
export const CompletedLocks = z.object({
  results: z.array(z.object({ message_id: z.string(), lock_token: z.string(), status: z.enum(['completed', 'lock_lost']) })),
});
export type CompletedLocks = z.infer<typeof CompletedLocks>;

/**
 * A replay (issue 16): the topic's retained batches copied again into one subscription, from a time
 * (batches published at or after it) or a stream offset (inclusive); exactly one of the two.
 */
export const ReplayRequest = z
  .object({
    from_time: z.string().datetime({ offset: true }).optional(),
    from_offset: z.number().int().nonnegative().optional(),
  })
  .strict()
  .refine((request) => (request.from_time === undefined) !== (request.from_offset === undefined), { message: 'give exactly one of from_time and from_offset' });
export type ReplayRequest = z.infer<typeof ReplayRequest>;

export const ReplayId = z.uuid('must be a replay id');

/**
 * A replay as it goes: `running` until the copy reached the end of the stream as it was when the
 * replay started (`completed`), failed, or its topic instance stopped (`interrupted`: ask again from
 * `last_offset + 1`). `copied` batches so far; offsets are the topic stream's.
 */
export const ReplayStatus = z.object({
  replay_id: z.string(),
  tenant: TenantId,
  topic: FeedName,
  subscription: SubscriptionName,
  from_time: z.string().optional(),
  from_offset: z.number().int().optional(),
  status: z.enum(['running', 'completed', 'failed', 'interrupted']),
  copied: z.number().int().nonnegative(),
  first_offset: z.number().int().optional(),
  last_offset: z.number().int().optional(),
  started_at: z.string(),
  finished_at: z.string().optional(),
  error: z.string().optional(),
});
export type ReplayStatus = z.infer<typeof ReplayStatus>;

/** The optional body of the internal subscription declare: with `start_at`, the new subscription also gets the batches retained since then. */
export const DeclareSubscription = z.object({ start_at: z.string().datetime({ offset: true }).optional() }).strict();
export type DeclareSubscription = z.infer<typeof DeclareSubscription>;
