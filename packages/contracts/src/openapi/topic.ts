import { z } from 'zod';
import { Batch, CompletedLocks, CompleteLocks, DeadLetterMessage, DeclareSubscription, ForwardedSettle, ForwardedSettleAnswer, NDJSON, PeekedBatches, PeekQuery, PublishResponse, ReceivedAndDeleted, ReceivedMessage, ReceiveQuery, ReplayId, ReplayRequest, ReplayStatus, ResubmitDeadLetters, ResubmittedDeadLetters, StreamQuery, TopicMessagePath, TopicPath, TopicSubscriptionPath } from '../topic.ts';
import { authenticatedBy, noBody, jsonResponse, openApiDocument, serviceOnly } from '../openapi.ts';
import { pathsOf, route } from '../route.ts';
import { AUDIT_FEED } from '../audit.ts';

const TOPIC = '/tenants/{tenant}/topics/{topic}';
const SUBSCRIPTION = `${TOPIC}/subscriptions/{subscription}`;
/** Azure Service Bus names a subscription's dead-letter queue as its sub-entity `$DeadLetterQueue`. */
const DEAD_LETTER_QUEUE = `${SUBSCRIPTION}/$deadletterqueue`;

/** Every call carries a SAS key: 400 for a malformed one, 401 / 403 as the SAS guard answers, 503 when a dependency does not answer. */
const sas = authenticatedBy(['sas'], [400, 401, 403, 503]);

const receive = (entity: string, what: string) =>
  sas(route({
    method: 'post', path: `${entity}/messages/head`,
    summary: `peek-lock receive from ${what}: a long poll of up to ?timeout seconds (SAS listen)`,
    params: TopicSubscriptionPath, query: ReceiveQuery,
    responses: { 201: jsonResponse(ReceivedMessage, 'a locked message and its lock token'), 204: noBody('nothing arrived within the timeout') },
    // 404 subscription_not_found: neither `default` nor listed by an operator; 401 also when the key was revoked or expired while waiting
    errors: [404],
  }));

/** Azure Service Bus's receive-and-delete: at most once, for consumers that need no lock */
const receiveAndDelete = (entity: string, what: string) =>
  sas(route({
    method: 'delete', path: `${entity}/messages/head`,
    summary: `receive and delete from ${what}: a long poll of up to ?timeout seconds; the message is removed before the answer is sent, so one lost on the way is lost (at most once) (SAS listen)`,
    params: TopicSubscriptionPath, query: ReceiveQuery,
    responses: { 200: jsonResponse(ReceivedAndDeleted, 'the message, no longer on the queue'), 204: noBody('nothing arrived within the timeout') },
    errors: [404],
  }));

/** browse without a lock: the next messages stay where they are, unlocked and uncounted */
const peek = (entity: string, what: string) =>
  sas(route({
    method: 'get', path: `${entity}/messages`,
    summary: `peek at up to ?count of the next messages of ${what} without locking them or counting a delivery (SAS listen)`,
    description: 'Messages locked by a receiver at the moment are not shown; nor is anything on the queue that is not a batch.',
    params: TopicSubscriptionPath, query: PeekQuery,
    responses: { 200: jsonResponse(PeekedBatches, 'the messages in queue order; none when the queue is empty') },
    errors: [404],
  }));

/** complete (DELETE), abandon (PUT) and renew lock (POST) of one locked message of an entity; complete of many (POST …/messages/complete) */
const settle = (entity: string, what: string) => {
  const message = <S extends z.ZodType>(method: 'delete' | 'put' | 'post', summary: string, answer: S, description: string) =>
    sas(route({ method, path: `${entity}/messages/{id}/{lockToken}`, summary, params: TopicMessagePath, responses: { 200: jsonResponse(answer, description) }, errors: [410] }));
  return {
    complete: message('delete', `complete (ack) a message of ${what}`, z.object({ message_id: z.string(), status: z.literal('completed') }), 'completed'),
    abandon: message('put', `abandon (unlock) a message of ${what}`, z.object({ message_id: z.string(), status: z.literal('abandoned') }), 'abandoned'),
    renewLock: message('post', `renew the lock of a message of ${what}`, z.object({ message_id: z.string(), locked_until: z.string() }), 'renewed'),
    // one segment after messages/, so neither messages/{id}/{lockToken} nor messages/head or messages/stream can be meant
    completeMany: sas(
      route({
        method: 'post',
        path: `${entity}/messages/complete`,
        summary: `complete (ack) up to 500 locked messages of ${what} at once, as one AMQP disposition`,
        description:
          'Each lock is settled as a single complete would be, on whichever instance holds it; a lock that does not complete is reported as `lock_lost` in its entry and does not fail the others. Only what fails before any lock is touched fails the request: 400 for a bad body (no locks, more than 500, a lock token named twice, a malformed id or token), 401 / 403 as the SAS guard answers, 415, 503.',
        params: TopicSubscriptionPath,
        body: { schema: CompleteLocks },
        responses: { 200: jsonResponse(CompletedLocks, 'each lock, in request order: completed or lock_lost') },
        errors: [413, 415],
      }),
    ),
  };
};

const deadLetter = settle(DEAD_LETTER_QUEUE, 'the dead-letter queue');

const RESUBMIT_DESCRIPTION = 'Moves up to `max` (default 100) dead letters, oldest first, back to the subscription, where they are delivered again from delivery count 1 without their dead-letter reason; answers how many moved. Recorded in the audit trail (deadletters.resubmitted).';

/** The topic service's operations, declared once (server binding, client, OpenAPI and the endpoint fuzz). */
export const topicRoutes = {
  publish: sas(route({ method: 'post', path: `${TOPIC}/messages`, summary: 'publish a batch (SAS send): 201 once the broker confirmed it', params: TopicPath, body: { schema: Batch }, responses: { 201: jsonResponse(PublishResponse, 'accepted (`duplicate: true`: accepted before, within the duplicate window, and not delivered again)') }, errors: [409, 413, 415, 429] })),
  // the tenants' audit feeds, published by Keyway itself through the same checks and quotas as a SAS publish
  // least privilege: the audit service's certificate publishes to tenants' audit feeds only
  publishInternal: serviceOnly(['audit'], route({ method: 'post', path: `/internal/v1${TOPIC}/messages`, summary: 'publish a batch as Keyway itself (audit service only: the tenants\' audit feeds): the same checks and quotas as the SAS publish, 201 once the broker confirmed it', params: TopicPath.extend({ topic: z.literal(AUDIT_FEED) }), body: { schema: Batch }, responses: { 201: jsonResponse(PublishResponse, 'accepted (`duplicate: true`: accepted before, within the duplicate window, and not delivered again)') }, errors: [400, 409, 413, 415, 429, 503] })),
  // another topic instance passes on a settle whose lock token names this one (lock tokens are per instance)
  settleForwarded: serviceOnly(['topic'], route({ method: 'post', path: '/internal/v1/locks/{lockToken}', summary: 'complete, abandon or renew a lock this instance holds, for another topic instance that received the settle (topic service only); never passed on again', description: 'The scope (tenant, topic, subscription, queue, message) is checked here as on the public settle paths: anything else, or a lock this instance does not hold, is 410 lock_lost.', params: z.object({ lockToken: TopicMessagePath.shape.lockToken }), body: { schema: ForwardedSettle }, responses: { 200: jsonResponse(ForwardedSettleAnswer, 'settled; locked_until after a renew') }, errors: [400, 410, 415] })),
  // the entitlement service has a subscription declared when an operator lists it, so it holds every batch from then on
  declareSubscription: serviceOnly(['entitlement'], route({ method: 'put', path: `/internal/v1${SUBSCRIPTION}`, summary: 'declare a listed subscription’s queues now, with the topic service’s queue bounds (entitlement service only, when an operator lists it): every batch published from then on reaches it; idempotent', description: 'The inventory is asked afresh: a subscription it does not list is 404 subscription_not_found and nothing is declared. With `start_at`, a replay of the batches the topic retained since then into the subscription is started as well (answered once it runs: it goes on in the background).', params: TopicSubscriptionPath, body: { schema: DeclareSubscription.optional(), required: false }, responses: { 204: noBody('declared') }, errors: [400, 404, 415, 429, 503] })),
  // streams outlive feeds otherwise: a feed granted again must not bring back what was published before it was removed
  deleteStream: serviceOnly(['entitlement'], route({ method: 'delete', path: `/internal/v1${TOPIC}/stream`, summary: 'delete the topic’s replay stream and what it retains (entitlement service only, when a feed is removed from a tenant); idempotent', description: 'A replay into a subscription of the feed granted again then copies only what was published after it was granted again.', params: TopicPath, responses: { 204: noBody('deleted') }, errors: [503] })),
  receive: receive(SUBSCRIPTION, 'the subscription'),
  stream: sas(route({
    method: 'post', path: `${SUBSCRIPTION}/messages/stream`,
    summary: 'streaming peek-lock receive: newline-delimited ReceivedMessage lines, at most ?prefetch unsettled (SAS listen)',
    params: TopicSubscriptionPath, query: StreamQuery,
    responses: {
      200: {
        description: 'one ReceivedMessage per line; empty lines are heartbeats; a failure ends the stream with an ErrorBody line (invalid_token once the key is revoked or expires)',
        schema: ReceivedMessage,
        type: NDJSON,
      },
    },
    errors: [404],
  })),
  receiveAndDelete: receiveAndDelete(SUBSCRIPTION, 'the subscription'),
  peek: peek(SUBSCRIPTION, 'the subscription'),
  ...settle(SUBSCRIPTION, 'the subscription'),
  // no such route under $deadletterqueue: a dead letter is not dead-lettered again
  deadLetterMessage: sas(
    route({
      method: 'post',
      path: `${SUBSCRIPTION}/messages/{id}/{lockToken}/deadletter`,
      summary: 'dead-letter a locked message of the subscription, with a reason and description (Azure DeadLetterReason / DeadLetterErrorDescription; SAS listen)',
      description: 'The message moves to the subscription’s dead-letter queue at once, however often it was delivered; received from there, it carries `dead_letter_reason` (default DeadLetteredByReceiver) and `dead_letter_error_description`.',
      params: TopicMessagePath,
      body: { schema: DeadLetterMessage },
      responses: { 200: jsonResponse(z.object({ message_id: z.string(), status: z.literal('deadlettered') }), 'dead-lettered') },
      errors: [410, 413, 415],
    }),
  ),
  replay: sas(route({
    method: 'post', path: `${SUBSCRIPTION}/replays`,
    summary: 'replay the topic’s retained batches into the subscription, from a time or a stream offset (SAS listen): 202 with the replay’s status and its Location',
    description:
      'The batches the topic’s replay stream still holds (its retention: per tier, e.g. 7 days) from `from_time` (published at or after it) or `from_offset` (inclusive) up to the stream’s end when the replay starts are copied into the subscription, in order, each with a fresh time to live; later batches reach it as usual. A `from_time` older than the retention is not an error: what is kept is replayed. A `from_time` in the future is 400. The copy runs in the background on the instance that answered; if that instance stops, the replay reads `interrupted` with its `last_offset`, and may be asked again from `last_offset + 1`. At most a few replays run per subscription at once: 429 beyond.',
    params: TopicSubscriptionPath,
    body: { schema: ReplayRequest },
    responses: { 202: jsonResponse(ReplayStatus, 'started: the status (Location: where it can be asked again)') },
    errors: [404, 413, 415, 429],
  })),
  replayStatus: sas(route({
    method: 'get', path: `${SUBSCRIPTION}/replays/{replayId}`,
    summary: 'the status of a replay into the subscription (SAS listen); kept for 7 days',
    params: TopicSubscriptionPath.extend({ replayId: ReplayId }),
    responses: { 200: jsonResponse(ReplayStatus, 'the replay as it goes') },
    // 404 replay_not_found: no such replay of this tenant, topic and subscription (or it is older than 7 days)
    errors: [404],
  })),
  deadLetterReceive: receive(DEAD_LETTER_QUEUE, 'the subscription’s dead-letter queue'),
  deadLetterReceiveAndDelete: receiveAndDelete(DEAD_LETTER_QUEUE, 'the subscription’s dead-letter queue'),
  deadLetterPeek: peek(DEAD_LETTER_QUEUE, 'the subscription’s dead-letter queue'),
  deadLetterComplete: deadLetter.complete,
  deadLetterAbandon: deadLetter.abandon,
  deadLetterRenewLock: deadLetter.renewLock,
  deadLetterCompleteMany: deadLetter.completeMany,
  resubmitDeadLetters: sas(
    route({
      method: 'post',
      path: `${DEAD_LETTER_QUEUE}/resubmit`,
      summary: 'resubmit dead letters to their subscription (SAS listen)',
      description: RESUBMIT_DESCRIPTION,
      params: TopicSubscriptionPath,
      body: { schema: ResubmitDeadLetters },
      responses: { 200: jsonResponse(ResubmittedDeadLetters, 'how many were resubmitted') },
      errors: [404, 413, 415],
    }),
  ),
  // an operator resubmits through the entitlement service, which audits it under the operator's name
  resubmitDeadLettersInternal: serviceOnly(
    ['entitlement'],
    route({
      method: 'post',
      path: `/internal/v1${DEAD_LETTER_QUEUE}/resubmit`,
      summary: 'resubmit dead letters to their subscription for an operator (entitlement service only)',
      description: `${RESUBMIT_DESCRIPTION} A subscription the inventory does not list is 404 subscription_not_found.`,
      params: TopicSubscriptionPath,
      body: { schema: ResubmitDeadLetters },
      responses: { 200: jsonResponse(ResubmittedDeadLetters, 'how many were resubmitted') },
      errors: [400, 404, 413, 415, 503],
    }),
  ),
  // an operator replays through the entitlement service, which audits it under the operator's name
  replayInternal: serviceOnly(['entitlement'], route({
    method: 'post', path: `/internal/v1${SUBSCRIPTION}/replays`,
    summary: 'replay the topic’s retained batches into the subscription for an operator (entitlement service only): 202 with the replay’s status',
    description: 'The same replay as the SAS route. A subscription the inventory does not list is 404 subscription_not_found.',
    params: TopicSubscriptionPath,
    body: { schema: ReplayRequest },
    responses: { 202: jsonResponse(ReplayStatus, 'started: the status') },
    errors: [400, 404, 413, 415, 429, 503],
  })),
  replayStatusInternal: serviceOnly(['entitlement'], route({
    method: 'get', path: `/internal/v1${SUBSCRIPTION}/replays/{replayId}`,
    summary: 'the status of a replay into the subscription (entitlement service only); kept for 7 days',
    params: TopicSubscriptionPath.extend({ replayId: ReplayId }),
    responses: { 200: jsonResponse(ReplayStatus, 'the replay as it goes') },
    // 404 replay_not_found, as on the SAS route
    errors: [400, 404],
  })),
};

export const topicPaths = pathsOf(topicRoutes);

export const topicApi = openApiDocument({ title: 'Keyway topic service', description: 'Publish log batches and receive them with peek-lock on the Azure Service Bus REST paths. Every request carries a SAS key from PAC (send to publish, listen to receive and settle), checked before the body is read. Only `default` and the subscriptions an operator listed can be received from (404 subscription_not_found otherwise); their queues are declared when the operator lists them (`default`: on first publish), expire when unused, and hold at most MAX_QUEUE_DEPTH ready messages each (the oldest go to the dead letters). Streams and long polls check their key again before each hand-out. Any instance settles any lock: a lock token names the instance that holds the delivery, and a settle that reaches another instance is passed on to it (410 lock_lost when that instance is gone).' }, topicPaths);
