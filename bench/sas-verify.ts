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

  return [
    await measure('verifySas, key signed with the primary', once, () => verifySas(signedWithPrimary, { resource, right: 'listen', keys })),
    await measure('verifySas, key signed with the secondary', once, () => verifySas(signedWithSecondary, { resource, right: 'listen', keys })),
    await measure('raw HMAC-SHA256 of the string-to-sign', once, () => createHmac('sha256', primary).update(stringToSign).digest('base64')),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${machine()}\n\n${table('SAS verification', await sasVerify())}`);
}
