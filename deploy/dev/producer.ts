import { randomUUID } from 'node:crypto';
import type { PacClient, PasClient, TopicClient } from '@keyway/clients';
import type { Batch } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';

const ACTIONS = ['process.start', 'network.connect', 'file.write', 'user.login', 'dns.query'];

/** Synthetic EDR telemetry: a few records a batch, as a vendor platform would publish them. */
function demoBatch(tenant: string, topic: string, seq: number): Batch {
  const records = Array.from({ length: 3 }, (_, i) => ({
    time: new Date().toISOString(),
    host: `host-${(seq + i) % 7}`,
    action: ACTIONS[(seq + i) % ACTIONS.length],
    severity: ['low', 'medium', 'high'][(seq * 3 + i) % 3],
  }));
  return { id: randomUUID(), tenant, topic, seq, createdAt: new Date().toISOString(), contentType: 'application/json', records };
}

/** The demo producer: logs in, gets a send key from PAC, publishes a batch every interval. */
export function startDemoProducer(
  deps: { pas: PasClient; pac: PacClient; topic: TopicClient; logger: Logger },
  options: { email: string; password: string; tenant: string; topic: string; intervalMs: number },
) {
  let seq = 0;
  let key: { sasKey: string; renewAt: number } | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const sendKey = async () => {
    if (key && Date.now() < key.renewAt) return key.sasKey;
    const tokens = await deps.pas.password(options.email, options.password);
    const sas = await deps.pac.sas({ refresh_token: tokens.refresh_token, rights: 'send' });
    key = { sasKey: sas.sas_key, renewAt: Date.now() + (Date.parse(sas.expires_at) - Date.now()) / 2 };
    return key.sasKey;
  };

  const tick = async () => {
    try {
      const batch = demoBatch(options.tenant, options.topic, seq);
      await deps.topic.publish(await sendKey(), batch);
      seq += 1;
      deps.logger.info('published', { batchId: batch.id, seq: batch.seq });
    } catch (err) {
      key = undefined;
      deps.logger.warn('publish failed; retrying', { err });
    }
    if (!stopped) timer = setTimeout(tick, options.intervalMs);
  };
  void tick();
  return {
    published: () => seq,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
