import { metrics, type Attributes, type Meter } from '@opentelemetry/api';

/** the feed an agent pulls, once a SAS key named it */
export interface Feed {
  tenant: string;
  topic: string;
}

type Credential = 'login' | 'refresh' | 'sas_key';

/**
 * The agent's figures (issue 15), through @opentelemetry/api: no-ops until the process registers a
 * MeterProvider, so they are made when the agent is. Attributes are the feed and subscription the
 * agent pulls (its configuration: a handful of series per host).
 */
export interface ImporterMetrics {
  /** a batch the sink said is durable: batches, records, the write's duration, and its lag */
  written(feed: Feed, records: number, writeSec: number, createdAt: string): void;
  writeFailed(feed: Feed): void;
  duplicateDropped(feed: Feed): void;
  lockRenewed(feed: Feed): void;
  lockLost(feed: Feed): void;
  credentialRenewed(credential: Credential, outcome: 'success' | 'failure'): void;
  /** reports `pending()` (received, not settled yet) at each collection, until close() */
  observePending(pending: () => { feed: Feed | undefined; batches: number }): { close(): void };
}

/** seconds: a sink write is a file append with fsync up to a network round trip to a SIEM */
const WRITE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** seconds: from a producer's batch to the SIEM, near-real-time up to an agent that was down for an hour */
const LAG_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14_400];

export function importerMetrics(subscription: string, meter: Meter = metrics.getMeter('keyway.importer')): ImporterMetrics {
  const counter = (name: string, description: string) => meter.createCounter(name, { description });
  const batchesWritten = counter('keyway.importer.batches.written', 'batches the sink wrote durably, by tenant, topic and subscription');
  const recordsWritten = counter('keyway.importer.records.written', 'records (events) of the batches written, by tenant, topic and subscription');
  const writeErrors = counter('keyway.importer.write.errors', 'sink writes that failed (the batch is abandoned and delivered again), by tenant, topic and subscription');
  const duplicatesDropped = counter('keyway.importer.duplicates.dropped', 'redelivered batches not written again (the checkpoint had them), by tenant, topic and subscription');
  const locksRenewed = counter('keyway.importer.locks.renewed', 'lock renewals while a batch waited for or was in a slow write');
  const locksLost = counter('keyway.importer.locks.lost', 'locks lost before the complete (the batch comes back and is dropped as a duplicate)');
  const credentialsRenewed = counter('keyway.importer.credentials.renewed', 'logins, refresh_token grants and SAS keys the agent obtained (or failed to), by credential and outcome');
  const writeDuration = meter.createHistogram('keyway.importer.sink.write.duration', {
    description: 'how long the sink took to make a batch durable',
    unit: 's',
    advice: { explicitBucketBoundaries: WRITE_BUCKETS },
  });
  const lag = meter.createHistogram('keyway.importer.lag', {
    description: "from the batch's createdAt (the producer's clock) to its durable write in the sink",
    unit: 's',
    advice: { explicitBucketBoundaries: LAG_BUCKETS },
  });
  const pendingGauge = meter.createObservableGauge('keyway.importer.batches.pending', {
    description: 'batches received and not settled yet (being written, or queued for the sink)',
  });

  // an agent pulls one feed; its attributes are made once (again only if the SAS key names another)
  let bound: { feed: Feed; attributes: Attributes } | undefined;
  const attributesOf = (feed: Feed): Attributes => {
    if (bound?.feed.tenant !== feed.tenant || bound.feed.topic !== feed.topic) {
      // a copy: the feed handed in may be a batch, which must not be kept alive by this
      const { tenant, topic } = feed;
      bound = { feed: { tenant, topic }, attributes: { tenant, topic, subscription } };
    }
    return bound.attributes;
  };
  const credentialAttributes = new Map<string, Attributes>();
  const ofCredential = (credential: Credential, outcome: string): Attributes => {
    const key = `${credential}:${outcome}`;
    let attributes = credentialAttributes.get(key);
    if (!attributes) {
      attributes = { credential, outcome };
      credentialAttributes.set(key, attributes);
    }
    return attributes;
  };

  return {
    written(feed, records, writeSec, createdAt) {
      const attributes = attributesOf(feed);
      batchesWritten.add(1, attributes);
      recordsWritten.add(records, attributes);
      writeDuration.record(writeSec, attributes);
      // a producer clock ahead of ours is no negative lag
      lag.record(Math.max(0, (Date.now() - Date.parse(createdAt)) / 1000), attributes);
    },
    writeFailed: (feed) => writeErrors.add(1, attributesOf(feed)),
    duplicateDropped: (feed) => duplicatesDropped.add(1, attributesOf(feed)),
    lockRenewed: (feed) => locksRenewed.add(1, attributesOf(feed)),
    lockLost: (feed) => locksLost.add(1, attributesOf(feed)),
    credentialRenewed: (credential, outcome) => credentialsRenewed.add(1, ofCredential(credential, outcome)),
    observePending(pending) {
      const observe = (result: { observe(value: number, attributes?: Attributes): void }) => {
        const { feed, batches } = pending();
        result.observe(batches, feed ? attributesOf(feed) : { subscription });
      };
      pendingGauge.addCallback(observe);
      return { close: () => pendingGauge.removeCallback(observe) };
    },
  };
}
