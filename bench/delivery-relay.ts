import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { amqplib, type AmqpChannel, type AmqpMessage, QUORUM } from './delivery-amqp.ts';

/**
 * The floor of any HTTPS design, measured beside the real path: the least a relay between HTTPS
 * producers, RabbitMQ and an HTTPS consumer can do. No authentication, no parsing, no checks, no
 * quotas, no logs, node:https without a framework; the same quorum queue, publisher confirms,
 * prefetch and TLS as the topic service. Its consumer (bench/delivery-worker.ts, `consume-relay`)
 * streams, appends + fsyncs each batch in order and acks many in one request, so what separates
 * the topic service from this row is the service's own work, and what separates this row from the
 * raw ceiling is the cost of HTTPS itself.
 *
 * POST /publish (body: the batch, `x-batch-id` header) → 201 once confirmed;
 * POST /stream → `deliveryTag \t batchId \t body \n` lines; POST /ack (body: tags, comma-separated).
 */
export interface Relay {
  url: string;
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

export async function startRelay(amqpUrl: string, queue: string, tls: { certPem: string; keyPem: string }, prefetch: number): Promise<Relay> {
  const connection = await (await amqplib()).connect(amqpUrl, { noDelay: true });
  const publisher = await connection.createConfirmChannel();
  await publisher.assertQueue(queue, QUORUM);
  let consumer: { channel: AmqpChannel; held: Map<string, AmqpMessage> } | undefined;

  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    void (async () => {
      if (req.url === '/publish') {
        const body = await readBody(req);
        publisher.publish('', queue, body, { persistent: true, messageId: String(req.headers['x-batch-id']), contentType: 'application/json', mandatory: true }, (err) => {
          res.writeHead(err ? 503 : 201, { 'content-length': 0 }).end();
        });
      } else if (req.url === '/stream') {
        const channel = await connection.createChannel();
        await channel.prefetch(prefetch);
        const held = new Map<string, AmqpMessage>();
        consumer = { channel, held };
        res.writeHead(200, { 'content-type': 'text/plain' });
        req.on('close', () => void channel.close().catch(() => undefined));
        await channel.consume(
          queue,
          (msg) => {
            if (!msg) return;
            const tag = String(msg.fields.deliveryTag);
            held.set(tag, msg);
            res.write(Buffer.concat([Buffer.from(`${tag}\t${msg.properties.messageId}\t`), msg.content, Buffer.from('\n')]));
          },
          { noAck: false },
        );
      } else if (req.url === '/ack') {
        const tags = (await readBody(req)).toString().split(',');
        for (const tag of tags) {
          const msg = consumer?.held.get(tag);
          if (!msg) continue;
          consumer?.held.delete(tag);
          consumer?.channel.ack(msg);
        }
        res.writeHead(200, { 'content-length': 0 }).end();
      } else {
        res.writeHead(404).end();
      }
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await publisher.deleteQueue(queue).catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}
