import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createBaseApp, finishApp, silentLogger } from '@keyway/kit';

describe('GET /metrics without METRICS_TOKEN', () => {
  it('does not exist (404 not_found), token or not: no telemetry was started in this process', async () => {
    const app = finishApp(createBaseApp({ service: 'test', logger: silentLogger }), silentLogger);
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
      for (const headers of [{}, { authorization: 'Bearer anything-at-all-0123456' }] as Record<string, string>[]) {
        const answer = await fetch(url, { headers });
        expect(answer.status).toBe(404);
        expect(await answer.json()).toMatchObject({ error: 'not_found' });
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
