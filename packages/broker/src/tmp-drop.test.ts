import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { it } from 'vitest';
import { createAmqpBroker } from './index.ts';
const run = promisify(execFile);
it('timing', { timeout: 30000 }, async () => {
  const t0 = Date.now();
  const log = (m: string) => console.log(Date.now() - t0, m);
  const broker = await createAmqpBroker({ url: 'amqp://guest:guest@127.0.0.1:5672', connectionName: 'timing-x', onError: (e) => log('onError ' + e.message) });
  const { stdout } = await run('rabbitmqctl', ['list_connections', '-q', 'pid', 'client_properties']);
  const pid = stdout.split('\n').find((l) => l.includes('timing-x'))!.split('\t')[0]!;
  log('closing');
  await run('rabbitmqctl', ['close_connection', pid, 'x']);
  log('rabbitmqctl returned');
  for (let i = 0; i < 20; i++) {
    try { await broker.ping(); log('ping ok'); break; } catch (e) { log('ping fail ' + (e as Error).message); }
    await new Promise((r) => setTimeout(r, 50));
  }
  await broker.close();
});
