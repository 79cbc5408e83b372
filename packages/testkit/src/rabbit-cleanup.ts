import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { amqpUrls, connectFirst } from '@keyway/broker';

const run = promisify(execFile);

/** The names of every queue of the local RabbitMQ node (rabbitmqctl: amqplib cannot list queues). */
export async function listQueues(): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', 'name'], { timeout: 30_000 });
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((name) => name !== '');
}

/**
 * Deletes the queues a test run declared (RabbitMQ keeps durable queues forever, and the broker is
 * shared by every run on the machine). Listing needs rabbitmqctl; amqplib cannot list queues.
 * `amqpUrl` may name several nodes of one cluster (comma-separated): the first that answers deletes.
 */
export async function deleteQueues(amqpUrl: string, keep: (name: string) => boolean): Promise<number> {
  const names = (await listQueues()).filter((name) => !keep(name));
  if (names.length === 0) return 0;
  const { conn: connection } = await connectFirst(amqpUrls(amqpUrl));
  try {
    const channel = await connection.createChannel();
    for (const name of names) await channel.deleteQueue(name);
    await channel.close();
  } finally {
    await connection.close();
  }
  return names.length;
}
