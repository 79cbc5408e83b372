import { once } from 'node:events';
import { Router } from 'express';
import { abortOnDrain, bindRoute, OAuthError, toErrorBody } from '@keyway/kit';
import { NDJSON, topicRoutes } from '@keyway/contracts';
import type { Broker } from '@keyway/broker';
import type { SasGuard } from '../auth/sas-guard.ts';
import { deliveredBatch } from '../batches/validate.ts';
import { brokerCall } from '../delivery/broker-errors.ts';
import type { LockTable } from '../delivery/locks.ts';
import type { SubscriptionRegistry } from '../delivery/subscriptions.ts';
import type { TopicMetrics } from '../metrics.ts';
import { receivedMessage, UNREADABLE } from './receive.ts';

/**
 * POST /tenants/{tenant}/topics/{topic}/subscriptions/{sub}/messages/stream?prefetch=N&timeout=S
 * (SAS `listen`): peek-lock receive for high volume. One long response of newline-delimited JSON,
 * each line a ReceivedMessage locked with its own lock token, settled through the usual settle
 * paths. Credit-based flow control: at most N messages of this stream are locked and unsettled at
 * once; each complete, abandon or lock expiry gives one credit back. The stream ends after S seconds
 * (its locks stay valid, the client settles them as usual) or when the client disconnects (its
 * locks are released at once, so the messages are delivered again). An empty line is written when
 * nothing else was for heartbeatMs, so proxies keep an idle stream open; a failure after the 200
 * ends the stream with one ErrorBody line.
 *
 * The SAS key is checked again (the guard's check: expiry, revocation) before each hand-out and every
 * recheckMs while the stream idles (issue 9): once it is revoked or expired, the stream ends with an
 * invalid_token line, the batch in hand goes back to its queue, and the stream's locks are released.
 */
export function streamRoutes(deps: {
  guard: SasGuard;
  broker: Broker;
  subscriptions: SubscriptionRegistry;
  locks: LockTable;
  heartbeatMs: number;
  /** how often an open stream checks its key again while no batch is handed out */
  recheckMs: number;
  metrics: TopicMetrics;
}): Router {
  const router = Router();
  bindRoute(router, topicRoutes.stream, deps.guard('listen'), async (req, res, input) => {
    const path = input.params();
    const { prefetch, timeout } = input.query();
    const topic = { tenant: path.tenant, topic: path.topic };
    // Before the 200 goes out, so that a broker outage is still an ordinary 503 (a round trip per
    // stream, not per message).
    await brokerCall(async () => {
      await deps.subscriptions.ensure(topic, path.subscription);
      await deps.broker.ping();
    });

    /** lock tokens this stream handed out that are not settled yet: the credit in use */
    const held = new Set<string>();
    const stop = new AbortController();
    let wake: (() => void) | undefined;
    const nudge = (): void => {
      const waiting = wake;
      wake = undefined;
      waiting?.();
    };
    const creditBack = (token: string): void => {
      held.delete(token);
      nudge();
    };
    stop.signal.addEventListener('abort', nudge);

    let clientGone = false;
    // A listener that stopped listening is this instance shutting down (it closes its listener, then
    // the connections): the batches go back uncounted, as a crash returns them.
    const shuttingDown = () => (req.socket as { server?: { listening?: boolean } }).server?.listening === false;
    const releaseHeld = () => {
      const handedOut = !shuttingDown();
      return Promise.all([...held].map((token) => deps.locks.unlock(token, handedOut ? 'stream closed' : 'instance shutting down', handedOut)));
    };
    res.on('close', () => {
      if (res.writableFinished) return;
      clientGone = true;
      stop.abort();
      void releaseHeld();
    });
    const endsAt = Date.now() + timeout * 1000;
    const ending = setTimeout(() => stop.abort(), timeout * 1000);
    // The instance draining (SIGTERM) ends the stream as its timeout does: what was handed out stays
    // locked for the client to settle, and the client opens its next stream elsewhere.
    const stopWatchingDrain = abortOnDrain(req, stop);
    /** why the key no longer receives, once a check found out: the stream ends with it */
    let keyRefused: unknown;
    const recheck = async (): Promise<void> => {
      try {
        await deps.guard.check(req.get('authorization'), topic, 'listen');
      } catch (err) {
        keyRefused ??= err;
        stop.abort();
      }
    };
    const watch = setInterval(() => void recheck(), deps.recheckMs);

    // X-Accel-Buffering: proxies that buffer responses (nginx) would hold the lines back
    res.status(200).set({ 'Content-Type': `${NDJSON}; charset=utf-8`, 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    const heartbeat = setTimeout(() => {
      if (clientGone) return;
      res.write('\n');
      heartbeat.refresh();
    }, deps.heartbeatMs);

    try {
      while (!stop.signal.aborted) {
        if (held.size >= prefetch) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          continue;
        }
        const waitMs = endsAt - Date.now();
        if (waitMs <= 0) break;
        // the wait ends with the stream, so a client that left is not handed anything
        const delivery = await brokerCall(() => deps.subscriptions.withSubscription(topic, path.subscription, () => deps.broker.receive(topic, path.subscription, waitMs, stop.signal)));
        if (!delivery) continue;
        if (stop.signal.aborted) {
          await deps.locks.release(delivery, clientGone ? 'receiver gone' : 'stream ended');
          break;
        }
        const batch = deliveredBatch(delivery);
        if (batch === undefined) {
          // Not something publish accepted (put on the queue by other means): dead-letter it.
          req.log.warn('delivery.unreadable', { messageId: delivery.messageId, subscription: path.subscription, deadLetter: false });
          await brokerCall(() => delivery.deadLetter(...UNREADABLE));
          deps.metrics.deadLettered(topic.tenant, topic.topic, 'unreadable');
          continue;
        }
        await recheck();
        if (keyRefused !== undefined) {
          await deps.locks.release(delivery, 'key no longer valid');
          break;
        }
        const scope = { ...topic, subscription: path.subscription, deadLetter: false, messageId: delivery.messageId };
        const lock = await deps.locks.lock(req, scope, delivery, creditBack);
        held.add(lock.token);
        heartbeat.refresh();
        deps.metrics.received(topic.tenant, topic.topic, false, batch.length);
        if (!res.write(receivedMessage(delivery, lock, batch, '\n'))) {
          // a slow reader: wait until the socket takes more rather than buffering without bound
          await once(res, 'drain', { signal: stop.signal }).catch(() => undefined);
        }
      }
      if (keyRefused !== undefined) {
        // the client can no longer settle what it holds: back to the queue at once, not at lock expiry
        await releaseHeld();
        throw keyRefused;
      }
    } catch (err) {
      if (!clientGone) {
        const { status, body } = toErrorBody(err);
        if (err instanceof OAuthError) req.log.warn('stream.failed', { status, error: body.error, detail: err.detail });
        else req.log.error('stream.failed', { err });
        res.write(`${JSON.stringify(body)}\n`);
      }
    } finally {
      clearTimeout(ending);
      stopWatchingDrain();
      clearTimeout(heartbeat);
      clearInterval(watch);
      if (clientGone) await releaseHeld();
      res.end();
    }
  });
  return router;
}
