import { createHmac, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { signSas, verifySas } from '@keyway/sas';
import { machine, measure, table, type Figure } from './measure.ts';

/**
 * What the topic service pays per request for SAS checking, against one raw HMAC-SHA256. verifySas
 * derives the per-policy key (one HMAC) and signs the string-to-sign (another) for each namespace
 * key it tries: primary first, then secondary, so a key signed with the secondary costs twice.
 */
const ITERATIONS = 50_000;
/** the ratio is taken in rounds that alternate the two ops, so a load swing on a shared machine hits both */
const ROUNDS = 15;

export async function sasVerify(): Promise<Figure[]> {
  const resource = 'https://localhost:8445/tenants/acme/topics/edr-events';
  const primary = randomBytes(32).toString('base64');
  const secondary = randomBytes(32).toString('base64');
  const expiry = Math.floor(Date.now() / 1000) + 86_400;
  const signedWithPrimary = signSas(primary, 'listen', resource, expiry).sasKey;
  const signedWithSecondary = signSas(secondary, 'listen', resource, expiry).sasKey;
  const keys = [primary, secondary];
  const stringToSign = `${encodeURIComponent(resource)}\n${expiry}`;
  const once = { iterations: ITERATIONS, concurrency: 1 };

  const ops: [string, () => unknown][] = [
    [PRIMARY, () => verifySas(signedWithPrimary, { resource, right: 'listen', keys })],
    ['verifySas, key signed with the secondary', () => verifySas(signedWithSecondary, { resource, right: 'listen', keys })],
    [RAW, () => createHmac('sha256', primary).update(stringToSign).digest('base64')],
  ];
  // each op compiled and warm before any is timed, so that the first figure pays no JIT the others skip
  for (const [, op] of ops) await measure('warm-up', { iterations: ITERATIONS / 10, concurrency: 1 }, op);
  const figures: Figure[] = [];
  for (const [name, op] of ops) figures.push(await measure(name, once, op));
  const [primaryOp, , rawOp] = ops;
  const costs: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const ours = await measure(PRIMARY, { iterations: ITERATIONS / 10, concurrency: 1 }, primaryOp![1]);
    const raw = await measure(RAW, { iterations: ITERATIONS / 10, concurrency: 1 }, rawOp![1]);
    costs.push(raw.opsPerSec / ours.opsPerSec);
  }
  costs.sort((a, b) => a - b);
  medianCost = costs[Math.floor(costs.length / 2)] ?? Number.NaN;
  return figures;
}

/** the median, over alternating rounds, of verifySas's cost in raw HMACs (set by sasVerify) */
let medianCost = Number.NaN;

const PRIMARY = 'verifySas, key signed with the primary';
const RAW = 'raw HMAC-SHA256 of the string-to-sign';

/** The cost of verifySas (a key signed with the primary) in bare HMACs, with the target. */
export function sasRatio(figures: Figure[]): string {
  const opsOf = (name: string) => figures.find((f) => f.name === name)?.opsPerSec ?? 0;
  return `- verifySas / raw HMAC (cost): ${(opsOf(RAW) / opsOf(PRIMARY)).toFixed(2)} in the table's runs, ${medianCost.toFixed(2)} median of ${ROUNDS} alternating rounds (target ≤ 2)\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const figures = await sasVerify();
  process.stdout.write(`${machine()}\n\n${table('SAS verification', figures)}\n${sasRatio(figures)}`);
}
