import type { Batch } from '@keyway/contracts';

/** A batch as the topic service hands it to a sink (fixture of the sink tests next to this file). */
export const testBatch = (seq: number, fields: Partial<Batch> = {}): Batch => ({
  id: `b-${seq}`,
  tenant: 'acme',
  topic: 'edr-events',
  seq,
  createdAt: '2024-05-06T07:08:09.123Z',
  contentType: 'application/json',
  records: [{ event: 'login' }],
  ...fields,
});
