import { InvalidRequest, parseInput } from '@keyway/kit';
import { Batch } from '@keyway/contracts';
import type { Delivery, TopicRef } from '@keyway/broker';
import { scanPayload } from './scan.ts';

/**
 * A published body becomes a Batch only after the scan (on the raw parse, so nothing the schema
 * would strip escapes it), the schema, and the check that it names the topic it is posted to.
 * Size and gzip are handled before this by the JSON parser (limit MAX_BATCH_BYTES, inflated size).
 */
export function readBatch(body: unknown, topic: TopicRef): Batch {
  scanPayload(body);
  const batch = parseInput(Batch, body, 'body');
  if (batch.tenant !== topic.tenant) throw new InvalidRequest('body.tenant must match the tenant in the path');
  if (batch.topic !== topic.topic) throw new InvalidRequest('body.topic must match the topic in the path');
  return batch;
}

/**
 * The AMQP content type of a body publish wrote itself, from a batch readBatch accepted: delivered
 * as stored, not parsed and checked a second time on the way out (the profile's largest cost of a
 * delivery). Anything else on a queue (older messages, a body put there by other means) is parsed.
 */
export const CHECKED_BATCH = 'application/vnd.keyway.batch+json';

/** The bytes publish hands the broker: the checked batch's JSON. */
export const storedBatch = (batch: Batch): Buffer => Buffer.from(JSON.stringify(batch));

/**
 * A delivered batch as JSON bytes: a checked one as stored (no decoding into a string and encoding
 * back on the way out); undefined when the body is not a batch (it did not come through publish).
 */
export function deliveredBatch(delivery: Pick<Delivery, 'body' | 'contentType'>): Buffer | undefined {
  if (delivery.contentType === CHECKED_BATCH) return delivery.body;
  const batch = parseDelivered(delivery.body);
  return batch && storedBatch(batch);
}

function parseDelivered(body: Buffer): Batch | undefined {
  try {
    const parsed = Batch.safeParse(JSON.parse(body.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
