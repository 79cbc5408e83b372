// amqplib, typed here: its types are not a dependency of the workspace root

export interface AmqpMessage {
  content: Buffer;
  fields: { deliveryTag: number };
  properties: { messageId?: string };
}
export interface AmqpChannel {
  assertQueue(queue: string, options: { durable: boolean; arguments: Record<string, unknown> }): Promise<unknown>;
  deleteQueue(queue: string): Promise<unknown>;
  prefetch(count: number): Promise<unknown>;
  consume(queue: string, onMessage: (msg: AmqpMessage | null) => void, options: { noAck: boolean }): Promise<unknown>;
  ack(msg: AmqpMessage): void;
  close(): Promise<void>;
}
interface AmqpConfirmChannel extends AmqpChannel {
  publish(exchange: string, key: string, body: Buffer, options: { persistent: boolean; messageId: string; contentType: string; mandatory: boolean }, confirmed: (err: unknown) => void): boolean;
}
interface AmqpConnection {
  createChannel(): Promise<AmqpChannel>;
  createConfirmChannel(): Promise<AmqpConfirmChannel>;
  close(): Promise<void>;
}
export const amqplib = async () => ((await import('amqplib' as string)) as { default: { connect(url: string, options?: { noDelay?: boolean }): Promise<AmqpConnection> } }).default;
export const QUORUM = { durable: true, arguments: { 'x-queue-type': 'quorum' } };
