import { Router, type Request, type Response } from 'express';
import { abortOnDrain, bindRoute, type RouteHandler } from '@keyway/kit';
import { topicRoutes } from '@keyway/contracts';
import type { Broker, Delivery, TopicRef } from '@keyway/broker';
import type { SasGuard } from '../auth/sas-guard.ts';
import { deliveredBatch } from '../batches/validate.ts';
import { brokerCall } from '../delivery/broker-errors.ts';
import type { LockTable } from '../delivery/locks.ts';
import type { SubscriptionRegistry } from '../delivery/subscriptions.ts';
import type { TopicMetrics } from '../metrics.ts';

interface ReceiveDeps {
  guard: SasGuard;
  broker: Broker;
  subscriptions: SubscriptionRegistry;
  locks: LockTable;
  metrics: TopicMetrics;
}

/**
 * POST /tenants/{tenant}/topics/{topic}/subscriptions/{sub}/messages/head?timeout=N (SAS `listen`):
 * Azure Service Bus peek-lock receive, a long poll of up to N seconds. 201 with the batch and its
 * lock token, or 204 when nothing arrived. DELETE on the same path receives and deletes (issue 16):
 * the same long poll, the batch acked before it is answered 200 (at most once). GET …/messages?count=N
 * peeks at the next batches without locking or counting them. The same under `{sub}/$deadletterqueue`
 * for the subscription's dead-letter queue.
 */
export function receiveRoutes(deps: ReceiveDeps): Router {
  const router = Router();
  bindRoute(router, topicRoutes.receive, deps.guard('listen'), receiveOne(deps, false, handOutLocked(deps)));
  bindRoute(router, topicRoutes.deadLetterReceive, deps.guard('listen'), receiveOne(deps, true, handOutLocked(deps)));
  bindRoute(router, topicRoutes.receiveAndDelete, deps.guard('listen'), receiveOne(deps, false, handOutDeleted));
  bindRoute(router, topicRoutes.deadLetterReceiveAndDelete, deps.guard('listen'), receiveOne(deps, true, handOutDeleted));
  bindRoute(router, topicRoutes.peek, deps.guard('listen'), peek(deps, false));
  bindRoute(router, topicRoutes.deadLetterPeek, deps.guard('listen'), peek(deps, true));
  return router;
}

/**
 * A dead letter's reason and description (Azure's DeadLetterReason, DeadLetterErrorDescription) as JSON
 * members, each followed by a comma; an empty description is left out, as is either on any other delivery.
 */
const deadLetterFields = ({ deadLetterReason: reason, deadLetterDescription: description }: Delivery): string =>
  (reason === undefined ? '' : `"dead_letter_reason":${JSON.stringify(reason)},`) + (description ? `"dead_letter_error_description":${JSON.stringify(description)},` : '');

/** the reason and description a delivery that is not a batch is dead-lettered with */
export const UNREADABLE = ['UnreadableMessage', 'not a batch as publish accepts it'] as const;

/**
 * A locked delivery as the receive and stream endpoints answer it (a ReceivedMessage), as JSON bytes
 * written around the batch's stored bytes, so the batch is neither parsed nor decoded again;
 * `trailer` ends a stream's line.
 */
export function receivedMessage(delivery: Delivery, lock: { token: string; lockedUntil: number }, batch: Buffer, trailer = ''): Buffer {
  const head = `{"message_id":${JSON.stringify(delivery.messageId)},"lock_token":${JSON.stringify(lock.token)},"locked_until":"${new Date(lock.lockedUntil).toISOString()}","delivery_count":${Math.trunc(delivery.deliveryCount)},${deadLetterFields(delivery)}"batch":`;
  return Buffer.concat([Buffer.from(head), batch, Buffer.from(`}${trailer}`)]);
}

/**
 * A batch received without a lock (a ReceivedAndDeleted or PeekedBatch), as JSON bytes written around
 * the batch's stored bytes, as receivedMessage does.
 */
function unlockedMessage(message: Pick<Delivery, 'messageId' | 'deliveryCount' | 'deadLetterReason' | 'deadLetterDescription'>, batch: Buffer): Buffer {
  const head = `{"message_id":${JSON.stringify(message.messageId)},"delivery_count":${Math.trunc(message.deliveryCount)},"batch":`;
  const reason = message.deadLetterReason === undefined ? '' : `,"dead_letter_reason":${JSON.stringify(message.deadLetterReason)}`;
  const description = message.deadLetterDescription === undefined ? '' : `,"dead_letter_error_description":${JSON.stringify(message.deadLetterDescription)}`;
  return Buffer.concat([Buffer.from(head), batch, Buffer.from(`${reason}${description}}`)]);
}

/** What a receive does with the delivery it took: answers the request, settling or locking the delivery. */
type HandOut = (req: Request, res: Response, received: { topic: TopicRef; subscription: string; deadLetter: boolean; delivery: Delivery; batch: Buffer }) => Promise<void>;

/** peek-lock: locked for LOCK_DURATION_SEC, 201 with its lock token */
const handOutLocked =
  (deps: ReceiveDeps): HandOut =>
  async (req, res, { topic, subscription, deadLetter, delivery, batch }) => {
    const lock = await deps.locks.lock(req, { ...topic, subscription, deadLetter, messageId: delivery.messageId }, delivery);
    res
      .status(201)
      .type('application/json; charset=utf-8')
      .send(receivedMessage(delivery, lock, batch));
  };

/**
 * receive-and-delete: acked before the answer is written, so it is never delivered again, and lost
 * when the answer does not reach the client (at most once, as Azure's ReceiveAndDelete mode)
 */
const handOutDeleted: HandOut = async (req, res, { topic, subscription, deadLetter, delivery, batch }) => {
  await brokerCall(() => delivery.ack());
  req.log.info('delivery.received_and_deleted', { tenant: topic.tenant, topic: topic.topic, subscription, deadLetter, messageId: delivery.messageId });
  res.status(200).type('application/json; charset=utf-8').send(unlockedMessage(delivery, batch));
};

/**
 * GET …/messages?count=N: the next batches as they are on the queue, neither locked nor counted;
 * what is not a batch is left out (a receive dead-letters it or leaves it to an operator).
 */
function peek(deps: ReceiveDeps, deadLetter: boolean): RouteHandler<typeof topicRoutes.peek> {
  return async (_req, res, input) => {
    const path = input.params();
    const { count } = input.query();
    const topic = { tenant: path.tenant, topic: path.topic };
    const peeked = await brokerCall(() => deps.subscriptions.withSubscription(topic, path.subscription, () => deps.broker.peek(topic, path.subscription, count, { deadLetter })));
    const messages = peeked.flatMap((message) => {
      const batch = deliveredBatch(message);
      return batch === undefined ? [] : [unlockedMessage(message, batch)];
    });
    res
      .status(200)
      .type('application/json; charset=utf-8')
      .send(Buffer.concat([Buffer.from('{"messages":['), ...messages.flatMap((m, i) => (i === 0 ? [m] : [Buffer.from(','), m])), Buffer.from(']}')]));
  };
}

function receiveOne(deps: ReceiveDeps, deadLetter: boolean, handOut: HandOut): RouteHandler<typeof topicRoutes.receive | typeof topicRoutes.receiveAndDelete> {
  const receive = deadLetter ? deps.broker.receiveDeadLetter.bind(deps.broker) : deps.broker.receive.bind(deps.broker);
  return async (req, res, input) => {
    const path = input.params();
    const { timeout } = input.query();
    const topic = { tenant: path.tenant, topic: path.topic };

    // A long poll the client gave up on stops waiting, and must not hold a message it already took.
    let gone = false;
    // The wait also ends when the instance drains (SIGTERM): 204 now, and the client polls elsewhere.
    const waitEnds = new AbortController();
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      waitEnds.abort();
    });
    const stopWatchingDrain = abortOnDrain(req, waitEnds);

    // Unreadable dead letters held while looking further, so the same one is not handed back at once.
    const skipped: Delivery[] = [];
    const deadline = Date.now() + timeout * 1000;
    try {
      for (;;) {
        const delivery = await brokerCall(() =>
          deps.subscriptions.withSubscription(topic, path.subscription, () => receive(topic, path.subscription, Math.max(0, deadline - Date.now()), waitEnds.signal)),
        );
        if (!delivery) {
          res.status(204).end();
          return;
        }
        if (gone) {
          await deps.locks.release(delivery, 'receiver gone');
          return;
        }
        const batch = deliveredBatch(delivery);
        if (batch === undefined) {
          // Not something publish accepted (put on the queue by other means). From the subscription it
          // is dead-lettered; a dead letter stays where it is for an operator, and we keep waiting.
          req.log.warn('delivery.unreadable', { messageId: delivery.messageId, subscription: path.subscription, deadLetter });
          if (deadLetter) skipped.push(delivery);
          else {
            await brokerCall(() => delivery.deadLetter(...UNREADABLE));
            deps.metrics.deadLettered(topic.tenant, topic.topic, 'unreadable');
          }
          continue;
        }
        // The key may have been revoked or have expired while this poll waited (issue 9): checked again
        // before the hand-out, and refused, the batch goes back to its queue.
        try {
          await deps.guard.check(req.get('authorization'), topic, 'listen');
        } catch (err) {
          await deps.locks.release(delivery, 'key no longer valid');
          throw err;
        }
        await handOut(req, res, { topic, subscription: path.subscription, deadLetter, delivery, batch });
        deps.metrics.received(topic.tenant, topic.topic, deadLetter, batch.length);
        return;
      }
    } finally {
      stopWatchingDrain();
      await Promise.all(skipped.map((delivery) => deps.locks.release(delivery, 'unreadable dead letter')));
    }
  };
}
