import type { Batch } from '@keyway/contracts';

/** Where batches go. `write` resolves only once the batch is durable: the agent acks after that. */
export interface Sink {
  readonly description: string;
  write(batch: Batch): Promise<void>;
  close(): Promise<void>;
}
