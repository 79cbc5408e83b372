import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Figure {
  name: string;
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/**
 * Runs `op` exactly `iterations` times on `concurrency` workers and times each call. A bounded
 * count, not a duration, so every run does the same work and figures compare across machines.
 */
export async function measure(name: string, options: { iterations: number; concurrency: number }, op: (i: number, worker: number) => unknown): Promise<Figure> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async (_: unknown, w: number) => {
    while (next < options.iterations) {
      const i = next;
      next += 1;
      const started = process.hrtime.bigint();
      await op(i, w);
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return { name, ops: latencies.length, seconds, opsPerSec: latencies.length / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

export const fixed = (n: number, digits: number) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A Markdown table, so the output can be pasted into the README as is. */
export function table(title: string, figures: Figure[]): string {
  const rows = figures.map((f) => `| ${f.name} | ${f.ops} | ${fixed(f.opsPerSec, 0)} | ${fixed(f.p50Ms, 3)} | ${fixed(f.p99Ms, 3)} | ${fixed(f.seconds, 2)} s |`);
  return [`### ${title}`, '', '| what | ops | ops/s | p50 ms | p99 ms | wall |', '| --- | ---: | ---: | ---: | ---: | ---: |', ...rows, ''].join('\n');
}

export function machine(): string {
  return `${availableParallelism()} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${process.platform}/${process.arch}`;
}

/**
 * One folder for everything a bench run makes (clamd's scratch, the suite's PKI and file storage),
 * set as TMPDIR for the run; `remove()` puts TMPDIR back and deletes it.
 */
export function benchScratch(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return {
    dir,
    remove() {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
