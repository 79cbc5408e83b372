import type { Batch } from '@keyway/contracts';

/** Where batches go. `write` resolves only once the batch is durable: the agent acks after that. */
export interface Sink {
  readonly description: string;
  /**
   * `json`, when the caller has it: the batch's JSON as received, exactly `batch`'s (StreamedMessage
   * `batchJson`), which a sink writing JSON writes as it is instead of serialising `batch` again.
   */
  write(batch: Batch, json?: Buffer): Promise<void>;
  close(): Promise<void>;
}
