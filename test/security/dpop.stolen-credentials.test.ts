import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https, { type RequestOptions } from 'node:https';
import type { ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, dpopSigner, FORM, form, pacClient, pasClient, topicClient } from '@keyway/clients';
import { importerFeeds, startImporter } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { dpopKeyFromPem, generateDpopKey, type DpopKey } from '@keyway/tokens';
import { makeBatch, PASSWORD, provisionTenant, rawClient, refusalOf, waitForLines } from '../helpers.ts';

/** design.md: a revocation holds at the topic service within seconds */
const BUDGET_MS = 5000;

/** What an observer of the importer's requests saw (the credentials it sent), by service. */
interface Loot {
  refreshTokens: string[];
  sasKeys: string[];
}

/**
 * The theft, modelled: something on the importer's host that sees every request the agent sends,
 * TLS or not (malware in its process, a TLS-inspecting proxy the host trusts). Here: the importer runs
 * in the test's process and Node's https.request is wrapped to copy what goes to PAC (the refresh token
 * in the form body) and to the topic service (the SAS key in Authorization). It sees no private key:
 * the key file is a separate theft, modelled by reading the file at the end.
 */
function recordRequests(targets: { pac: string; topic: string }): { loot: Loot; stop(): void } {
  const loot: Loot = { refreshTokens: [], sasKeys: [] };
  const original = https.request;
  const hostOf = (url: string) => new URL(url).host;
  const wrapped = ((...args: Parameters<typeof https.request>) => {
    const request: ClientRequest = (original as (...a: unknown[]) => ClientRequest)(...args);
    const options = (typeof args[0] === 'object' && !(args[0] instanceof URL) ? args[0] : args[1]) as RequestOptions | undefined;
    const host = `${options?.hostname ?? options?.host}:${options?.port}`;

    const headers = (options?.headers ?? {}) as Record<string, string>;
    const header = (name: string) => Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1];
    if (host === hostOf(targets.topic)) {
      const authorization = header('authorization');
      if (authorization?.startsWith('SharedAccessSignature ')) loot.sasKeys.push(authorization);
    }
    if (host === hostOf(targets.pac) && options?.path === '/v1/sas') {
      // the body (JSON or a form), however it is written (write or end)
      const seen = (chunk: unknown) => {
        if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk)) return;
        const text = chunk.toString();
        let token: unknown;
        try {
          token = (JSON.parse(text) as { refresh_token?: unknown }).refresh_token;
        } catch {
          token = new URLSearchParams(text).get('refresh_token');
        }
        if (typeof token === 'string' && token.length > 0) loot.refreshTokens.push(token);
      };
      const write = request.write.bind(request);
      const end = request.end.bind(request);
      request.write = ((chunk: unknown, ...rest: unknown[]) => {
        seen(chunk);
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof request.write;
      request.end = ((chunk?: unknown, ...rest: unknown[]) => {
        if (typeof chunk !== 'function') seen(chunk);
        return (end as (...a: unknown[]) => ClientRequest)(chunk, ...rest);
      }) as typeof request.end;
    }
    return request;
  }) as typeof https.request;
  https.request = wrapped;
  return {
    loot,
    stop: () => {
      https.request = original;
    },
  };
}

/**
 * Issue 14, first bullet, end to end (real PAS, PAC, topic service, RabbitMQ, Redis, PostgreSQL, and
 * the importer as it ships, DPOP on by default): the refresh token and the SAS key copied off a
 * running importer are of no use to another client, with no key or with the thief's own; the importer
 * keeps working; an operator revoking the importer's key pair stops its SAS keys within seconds.
 * Needs PAS to bind tokens (task A: cnf.jkt, its nonce, the admin revocation route).
 */
describe('DPoP: credentials stolen from a running importer', () => {
  let suite: Suite;
  let importer: Awaited<ReturnType<typeof startImporter>> | undefined;
  let recorder: ReturnType<typeof recordRequests> | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'keyway-dpop-stolen-'));
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  });
  afterAll(async () => {
    recorder?.stop();
    await importer?.stop();
    await suite?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the stolen refresh token and SAS key are refused elsewhere, the importer keeps pulling, and revoking its key pair stops its SAS keys', async () => {
    const { tenant, feed, email } = await provisionTenant(suite);
    const producer = await suite.operator.createUser(tenant, { email: `producer@${tenant}.example`, password: PASSWORD, roles: ['producer'] });
    const { sas_key: sendKey } = await suite.pac.sas({ refresh_token: (await suite.pas.password(producer.email, PASSWORD)).refresh_token, rights: 'send' });
    let seq = 0;
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++) await suite.topic.publish(sendKey, makeBatch(tenant, feed, ++seq));
    };

    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, suite.pki.ca.certPem);
    const sinkFile = join(dir, 'state', 'out.jsonl');
    recorder = recordRequests({ pac: suite.urls.pac, topic: suite.urls.topic });
    importer = await startImporter(
      importerFeeds({ PAS_URL: suite.urls.pas, PAC_URL: suite.urls.pac, TOPIC_URL: suite.urls.topic, TLS_CA_FILE: caFile, KEYWAY_USERNAME: email, KEYWAY_PASSWORD: PASSWORD, SINK_FILE: sinkFile }),
      silentLogger,
    );
    await publish(3);
    expect(await waitForLines(sinkFile, 3, 20_000)).toHaveLength(3);
    const { loot } = recorder;
    const refreshToken = loot.refreshTokens.at(-1);
    const sasKey = loot.sasKeys.at(-1);
    expect(refreshToken).toEqual(expect.any(String));
    expect(sasKey).toEqual(expect.any(String));

    // the thief: no key, then a key pair of its own
    const thief: DpopKey = await generateDpopKey();
    const caPem = suite.pki.ca.certPem;
    const refusal = async (call: Promise<unknown>) => {
      const err = await refusalOf(call);
      return err instanceof ApiError ? { status: err.status, code: err.code } : err;
    };
    const sasRequest = { refresh_token: refreshToken!, rights: 'listen' as const };
    expect(await refusal(pacClient({ baseUrl: suite.urls.pac, caPem }).sas(sasRequest))).toEqual({ status: 400, code: 'invalid_dpop_proof' });
    expect(await refusal(pacClient({ baseUrl: suite.urls.pac, caPem, dpop: dpopSigner(thief) }).sas(sasRequest))).toEqual({ status: 400, code: 'invalid_dpop_proof' });
    // at PAS: a bound refresh token is refused without a proof by its key (RFC 9449 §5)
    expect(await refusal(pasClient({ baseUrl: suite.urls.pas, caPem }).refresh(refreshToken!))).toMatchObject({ status: 400 });
    expect(await refusal(pasClient({ baseUrl: suite.urls.pas, caPem, dpop: dpopSigner(thief) }).refresh(refreshToken!))).toMatchObject({ status: 400 });
    const receiveAsThief = (dpop?: DpopKey) => topicClient({ baseUrl: suite.urls.topic, caPem, dpop: dpop && dpopSigner(dpop) }).receive(sasKey!, tenant, feed, 'default', 0);
    expect(await refusal(receiveAsThief())).toEqual({ status: 401, code: 'invalid_dpop_proof' });
    expect(await refusal(receiveAsThief(thief))).toEqual({ status: 401, code: 'invalid_dpop_proof' });

    // the importer itself is not disturbed by any of it
    await publish(3);
    expect(await waitForLines(sinkFile, 6, 20_000)).toHaveLength(6);

    // the key file stolen too: the thief holds everything, until an operator revokes the key pair
    const stolenKey = await dpopKeyFromPem(readFileSync(join(dir, 'state', 'dpop-key.pem'), 'utf8'));
    const withStolenKey = topicClient({ baseUrl: suite.urls.topic, caPem, dpop: dpopSigner(stolenKey) });
    // settling a lock that does not exist: past the SAS and DPoP checks it is a lock error, refused before them a 401
    const statusWithStolenKey = async () => {
      const outcome = await refusal(withStolenKey.abandon(sasKey!, tenant, feed, 'default', `b-${randomUUID().slice(0, 8)}`, randomUUID()));
      return (outcome as { status?: number } | undefined)?.status ?? 200;
    };
    expect(await statusWithStolenKey()).not.toBe(401);

    const revoked = await rawClient(suite, 'pas', 'operator').post(`/admin/v1/dpop-keys/${stolenKey.jkt}/revoke`, form({ reason: 'key file stolen' }), { headers: FORM });
    expect(revoked.status).toBeLessThan(300);
    const startedAt = Date.now();
    let status = await statusWithStolenKey();
    while (status !== 401 && Date.now() - startedAt < BUDGET_MS * 2) {
      await sleep(100);
      status = await statusWithStolenKey();
    }
    expect(status).toBe(401);
    expect(Date.now() - startedAt).toBeLessThan(BUDGET_MS);
  });
});
