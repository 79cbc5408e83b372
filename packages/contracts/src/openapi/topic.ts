import { z } from 'zod';
import { FeedName, SubscriptionName, TenantId } from '../common.ts';
import { Batch, BATCH_ID, NDJSON, PublishResponse, ReceivedMessage, ReceiveQuery, StreamQuery } from '../topic.ts';
import { authenticatedBy, noBody, jsonResponse, openApiDocument, serviceOnly, type OperationSpec, type PathSpecs } from '../openapi.ts';

const TopicPath = z.object({ tenant: TenantId, topic: FeedName });
const SubscriptionPath = TopicPath.extend({ subscription: SubscriptionName });
const MessagePath = SubscriptionPath.extend({ id: z.string().regex(BATCH_ID), lockToken: z.uuid() });

const TOPIC = '/tenants/{tenant}/topics/{topic}';
const SUBSCRIPTION = `${TOPIC}/subscriptions/{subscription}`;
/** Azure Service Bus names a subscription's dead-letter queue as its sub-entity `$DeadLetterQueue`. */
const DEAD_LETTER_QUEUE = `${SUBSCRIPTION}/$deadletterqueue`;

/** Every call carries a SAS key: 400 for a malformed one, 401 / 403 as the SAS guard answers, 503 when a dependency does not answer. */
const sas = authenticatedBy(['sas'], [400, 401, 403, 503]);

const receive = (what: string): OperationSpec =>
  sas({
    summary: `peek-lock receive from ${what}: a long poll of up to ?timeout seconds (SAS listen)`,
    path: SubscriptionPath,
    query: ReceiveQuery,
    responses: { 201: jsonResponse(ReceivedMessage, 'a locked message and its lock token'), 204: noBody('nothing arrived within the timeout') },
    // 404 subscription_not_found: neither `default` nor listed by an operator; 401 also when the key was revoked or expired while waiting
    errors: [404],
  });

const settle = (what: string): PathSpecs[string] => ({
  delete: sas({ summary: `complete (ack) a message of ${what}`, path: MessagePath, responses: { 200: jsonResponse(z.object({ message_id: z.string(), status: z.literal('completed') }), 'completed') }, errors: [410] }),
  put: sas({ summary: `abandon (unlock) a message of ${what}`, path: MessagePath, responses: { 200: jsonResponse(z.object({ message_id: z.string(), status: z.literal('abandoned') }), 'abandoned') }, errors: [410] }),
  post: sas({ summary: `renew the lock of a message of ${what}`, path: MessagePath, responses: { 200: jsonResponse(z.object({ message_id: z.string(), locked_until: z.string() }), 'renewed') }, errors: [410] }),
});

/** The topic service's operations, with their zod schemas (the endpoint fuzz reads these). */
export const topicPaths: PathSpecs = {
    [`${TOPIC}/messages`]: {
      post: sas({
        summary: 'publish a batch (SAS send): 201 once the broker confirmed it',
        path: TopicPath,
        body: { schema: Batch },
        responses: { 201: jsonResponse(PublishResponse, 'accepted') },
        errors: [413, 415, 429],
      }),
    },
    [`/internal/v1${TOPIC}/messages`]: {
      post: serviceOnly({
        summary: 'publish a batch as Keyway itself (audit service only: the tenants\' audit feeds): the same checks and quotas as the SAS publish, 201 once the broker confirmed it',
        path: TopicPath,
        body: { schema: Batch },
        responses: { 201: jsonResponse(PublishResponse, 'accepted') },
        errors: [400, 413, 415, 429, 503],
      }),
    },
    [`${SUBSCRIPTION}/messages/head`]: { post: receive('the subscription') },
    [`${DEAD_LETTER_QUEUE}/messages/head`]: { post: receive('the subscription’s dead-letter queue') },
    [`${SUBSCRIPTION}/messages/stream`]: {
      post: sas({
        summary: 'streaming peek-lock receive: newline-delimited ReceivedMessage lines, at most ?prefetch unsettled (SAS listen)',
        path: SubscriptionPath,
        query: StreamQuery,
        responses: {
          200: {
            description: 'one ReceivedMessage per line; empty lines are heartbeats; a failure ends the stream with an ErrorBody line (invalid_token once the key is revoked or expires)',
            schema: ReceivedMessage,
            type: NDJSON,
          },
        },
        errors: [404],
      }),
    },
    [`${SUBSCRIPTION}/messages/{id}/{lockToken}`]: settle('the subscription'),
    [`${DEAD_LETTER_QUEUE}/messages/{id}/{lockToken}`]: settle('the dead-letter queue'),
};

export const topicApi = openApiDocument({
    title: 'Keyway topic service',
    description:
      'Publish log batches and receive them with peek-lock on the Azure Service Bus REST paths. Every request carries a SAS key from PAC (send to publish, listen to receive and settle), checked before the body is read. Only `default` and the subscriptions an operator listed can be received from (404 subscription_not_found otherwise); their queues are declared on first use, expire when unused, and hold at most MAX_QUEUE_DEPTH ready messages each (the oldest go to the dead letters). Streams and long polls check their key again before each hand-out.',
  }, topicPaths);
