import { InvalidRequest, parseInput } from '@keyway/kit';
import { Batch } from '@keyway/contracts';
import type { TopicRef } from '@keyway/broker';
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

/** A delivered body back to a Batch; undefined when it is not one (it did not come through publish). */
export function parseDelivered(body: Buffer): Batch | undefined {
  try {
    const parsed = Batch.safeParse(JSON.parse(body.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
