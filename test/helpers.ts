import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Batch, PutTier, Role } from '@keyway/contracts';
import type { Suite } from '@keyway/testkit';
import type { AxiosResponse } from 'axios';
import { ApiError, createHttp } from '@keyway/clients';

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

/** A tenant's feed with a listen-send key of its user, received from `subscription`. */
interface KeyedFeed {
  tenant: string;
  feed: string;
  key: string;
  subscription: string;
  /** peek-lock receive from `subscription`; null when nothing arrived within timeoutSec */
  receive(timeoutSec: number): ReturnType<Suite['topic']['receive']>;
}

/**
 * A fresh tenant (provisionTenant) whose feed lists `subscription` (`default` needs no listing), a
 * listen-send key of its user, and `count` batches published one at a time, their ids in `ids`;
 * `afterPublish` runs after each publish, before the next (e.g. to dead-letter the batch).
 */
export async function feedWithBatches(
  suite: Pick<Suite, 'operator' | 'pas' | 'pac' | 'topic'>,
  count: number,
  options: { subscription?: string; afterPublish?: (feed: KeyedFeed) => Promise<void> } = {},
) {
  const subscription = options.subscription ?? 'default';
  const t = await provisionTenant(suite);
  if (subscription !== 'default') await suite.operator.createSubscription(t.tenant, t.feed, subscription);
  const { refresh_token } = await suite.pas.password(t.email, PASSWORD);
  const { sas_key: key } = await suite.pac.sas({ refresh_token, rights: 'listen-send' });
  const feed = { ...t, key, subscription, ids: [] as string[], receive: (timeoutSec: number) => suite.topic.receive(key, t.tenant, t.feed, subscription, timeoutSec) };
  for (let seq = 0; seq < count; seq++) {
    const batch = makeBatch(t.tenant, t.feed, seq);
    await suite.topic.publish(key, batch);
    await options.afterPublish?.(feed);
    feed.ids.push(batch.id);
  }
  return feed;
}

/** The product a fresh release tenant's tier gives by default (provisionReleaseTenant). */
export const RELEASE_PRODUCT = { product: 'edr-agent', versions: '>=1.0.0' };

/**
 * A fresh tenant on a fresh tier giving `tierProducts` (default edr-agent >=1.0.0, no feeds), and a
 * user with `roles` (default downloader) and its own `products` (what uploader and publisher apply to).
 */
export async function provisionReleaseTenant(suite: Pick<Suite, 'operator'>, options: { tierProducts?: PutTier['products']; roles?: Role[]; products?: string[] } = {}) {
  const id = `t-${randomUUID().slice(0, 8)}`;
  const tier = `tier-${id}`;
  await suite.operator.putTier(tier, { name: `Tier ${id}`, feeds: [], products: options.tierProducts ?? [RELEASE_PRODUCT] });
  await suite.operator.createTenant({ id, name: `Tenant ${id}`, tier });
  const email = `person@${id}.example`;
  const user = await suite.operator.createUser(id, { email, password: PASSWORD, roles: options.roles ?? ['downloader'], products: options.products ?? [] });
  return { tenant: id, tier, email, user };
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

/** The login page PAS answered a browser (Accept: text/html), with what its form carries. */
export interface LoginPageAnswer {
  response: AxiosResponse<string>;
  /** the form's hidden pending-request id ('' when the answer is no login page) */
  request: string;
  /** the browser binding cookie as a browser sends it back (name=value), '' when none was set */
  cookie: string;
}

const BROWSER = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };

/** A browser as a plain HTTPS client: GET the authorization URL, keeping the cookie PAS sets, without following redirects. */
export async function openLoginPage(suite: Suite, authorizationUrl: string, cookie = ''): Promise<LoginPageAnswer> {
  const response = await rawClient(suite, 'pas').get<string>(authorizationUrl, { headers: { ...BROWSER, ...(cookie && { cookie }) }, responseType: 'text' });
  const set = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
  return { response, request: /name="request" value="([^"]+)"/.exec(response.data)?.[1] ?? '', cookie: set[0]?.split(';')[0] ?? cookie };
}

/** The login form as a browser posts it (form-encoded, with the cookie when given); the answer unfollowed. */
export function postLoginForm(suite: Suite, fields: Record<string, string>, cookie = ''): Promise<AxiosResponse<string>> {
  return rawClient(suite, 'pas').post<string>('/oauth2/login', new URLSearchParams(fields).toString(), {
    headers: { ...BROWSER, 'content-type': 'application/x-www-form-urlencoded', ...(cookie && { cookie }) },
    responseType: 'text',
  });
}

/** A person signing in at PAS's login page: the form's answer (a 303 to the client with code or error, or the page again). */
export async function browserLogin(suite: Suite, authorizationUrl: string, email: string, password: string): Promise<AxiosResponse<string>> {
  const page = await openLoginPage(suite, authorizationUrl);
  if (page.response.status !== 200) throw new Error(`no login page: ${page.response.status} ${page.response.headers.location ?? page.response.data}`);
  return postLoginForm(suite, { request: page.request, email, password }, page.cookie);
}

/** What a call was refused with (the error it rejected with), or undefined when it succeeded. */
export const refusalOf = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    () => undefined,
    (err: unknown) => err,
  );

/** A refused API call's status and error code ('done' when it succeeded); anything but an ApiError rejects. */
export const apiRefusal = (call: Promise<unknown>): Promise<'done' | { status: number; code: string }> =>
  call.then(
    () => 'done' as const,
    (err: unknown) => (err instanceof ApiError ? { status: err.status, code: err.code } : Promise.reject(err)),
  );
