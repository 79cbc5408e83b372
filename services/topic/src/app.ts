import type { Express } from 'express';
import { createBaseApp, finishApp, type Logger } from '@keyway/kit';
import type { Broker } from '@keyway/broker';
import { sasGuard } from './auth/sas-guard.ts';
import { tenantKeyCache, type SasKeySource } from './auth/tenant-keys.ts';
import type { TopicEnv } from './config.ts';
import { lockTable } from './delivery/locks.ts';
import { subscriptionRegistry } from './delivery/subscriptions.ts';
import { publishRoutes } from './routes/publish.ts';
import { receiveRoutes } from './routes/receive.ts';
import { settleRoutes } from './routes/settle.ts';

export type TopicOptions = Pick<TopicEnv, 'PUBLIC_BASE_URL' | 'LOCK_DURATION_SEC' | 'MAX_BATCH_BYTES' | 'SAS_KEY_CACHE_SEC'>;

export interface TopicDeps {
  broker: Broker;
  /** the tenant's namespace keys [primary, secondary]; [] for an unknown tenant; rejects when they cannot be looked up */
  sasKeys: SasKeySource;
  logger: Logger;
  /** milliseconds since the epoch; SAS expiry and lock deadlines are read from it */
  now?: () => number;
}

/** An Express app plus close(), which returns every locked message to its queue and stops lock timers. */
export type TopicApp = Express & { close(): Promise<void> };

/** Publish, peek-lock receive and settle batches; never listens (main.ts and tests do). */
export function createApp(options: TopicOptions, deps: TopicDeps): TopicApp {
  const now = deps.now ?? Date.now;
  const app = createBaseApp({
    service: 'topic',
    logger: deps.logger,
    readiness: [{ name: 'broker', check: () => deps.broker.ping() }],
    // applies to the inflated size of gzip bodies too, so a small compressed bomb is still 413
    bodyLimit: String(options.MAX_BATCH_BYTES),
  });
  const guard = sasGuard({
    publicBaseUrl: options.PUBLIC_BASE_URL,
    keys: tenantKeyCache(deps.sasKeys, { ttlMs: options.SAS_KEY_CACHE_SEC * 1000, now }),
    now,
  });
  const subscriptions = subscriptionRegistry(deps.broker);
  const locks = lockTable({ lockDurationMs: options.LOCK_DURATION_SEC * 1000, now, logger: deps.logger });

  app.use(publishRoutes({ guard, broker: deps.broker, subscriptions }));
  app.use(receiveRoutes({ guard, broker: deps.broker, subscriptions, locks }));
  app.use(settleRoutes({ guard, locks }));
  return Object.assign(finishApp(app, deps.logger), { close: () => locks.close() });
}
