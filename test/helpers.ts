import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Batch, Role } from '@keyway/contracts';
import type { Suite } from '@keyway/testkit';
import { createHttp } from '@keyway/clients';

export const PASSWORD = 'correct horse battery staple';

/** A fresh tenant with one feed and a full-control user (or one with `roles`), provisioned through the admin API. */
export async function provisionTenant(suite: Pick<Suite, 'operator'>, options: { feeds?: string[]; roles?: Role[] } = {}) {
  const id = `t-${randomUUID().slice(0, 8)}`;
  const feeds = options.feeds ?? ['edr-events'];
  await suite.operator.createTenant({ id, name: `Tenant ${id}`, feeds });
  const email = `agent@${id}.example`;
  const user = await suite.operator.createUser(id, { email, password: PASSWORD, roles: options.roles ?? ['full-control'] });
  return { tenant: id, feed: feeds[0] ?? 'edr-events', email, user };
}

export function makeBatch(tenant: string, topic: string, seq: number, records: unknown[] = [{ event: 'login', seq }]): Batch {
  return { id: `b-${seq}-${randomUUID().slice(0, 8)}`, tenant, topic, seq, createdAt: new Date().toISOString(), contentType: 'application/json', records };
}

/** A raw HTTPS client for one service, to see statuses and headers exactly as a caller would. */
export function rawClient(suite: Suite, service: keyof Suite['urls'], caller?: string) {
  const cert = caller ? suite.pki.certs[caller] : undefined;
  return createHttp({ baseUrl: suite.urls[service], caPem: suite.pki.ca.certPem, clientCert: cert });
}

/** The non-empty lines of a JSON-lines file (a file sink's output); none while it does not exist yet. */
export const readLines = (path: string): string[] => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

/** Polls a JSON-lines file until it holds `count` lines or `timeoutMs` pass; answers the lines it holds then. */
export async function waitForLines(path: string, count: number, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = readLines(path);
    if (lines.length >= count || Date.now() > deadline) return lines;
    await sleep(50);
  }
}
