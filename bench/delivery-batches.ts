import { randomUUID } from 'node:crypto';
import type { Batch } from '@keyway/contracts';

/** What the delivery benchmark sends: the same batches for the end-to-end runs and for the raw ceiling. */
export const RECORDS_PER_BATCH = 100;

/** Milliseconds on a clock every thread of the process shares (performance.now() alone is per thread). */
export const now = () => performance.timeOrigin + performance.now();

export const batchIds = (count: number): string[] => Array.from({ length: count }, (_, seq) => `b-${seq}-${randomUUID().slice(0, 8)}`);

/** EDR-like records, about 300 bytes each as JSON (a batch is about 31 KB). */
export function makeBatches(tenant: string, topic: string, ids: string[]): Batch[] {
  const actions = ['process.start', 'file.write', 'net.connect', 'login', 'registry.set'];
  return ids.map((id, seq) => ({
    id,
    tenant,
    topic,
    seq,
    createdAt: new Date().toISOString(),
    contentType: 'application/json',
    records: Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({
      ts: new Date(Date.now() + i).toISOString(),
      host: `ws-${(seq * 7 + i) % 500}.corp.example`,
      user: `user${i % 40}@corp.example`,
      action: actions[i % actions.length],
      severity: i % 17 === 0 ? 'warning' : 'info',
      process: { pid: 1000 + i, name: 'powershell.exe', cmdline: `powershell.exe -NoProfile -File C:\\scripts\\task-${i}.ps1` },
      net: { src: `10.0.${seq % 250}.${i % 250}`, dst: '203.0.113.7', port: 443, bytes: 1024 + i },
    })),
  }));
}
