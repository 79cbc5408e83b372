import type { Request, RequestHandler, Response, Router } from 'express';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { route } from '@keyway/contracts';
import { InvalidRequest, type OAuthError } from './errors.ts';
import { bindRoute } from './route.ts';

const rotate = route({
  method: 'post',
  path: '/admin/v1/tenants/{tenant}/keys/{kid}',
  summary: 'test route',
  params: z.object({ tenant: z.string().regex(/^[a-z]+$/), kid: z.string() }),
  query: z.object({ limit: z.coerce.number().int().default(10) }),
  body: { schema: z.object({ key: z.enum(['primary', 'secondary']) }) },
  responses: { 200: { description: 'ok' } },
});

/** the path and the handlers bindRoute registers, on a router that only records */
function bound(...steps: Parameters<typeof bindRoute<typeof rotate>> extends [unknown, unknown, ...infer S] ? S : never) {
  const registered: { method?: string; path?: string; handlers: RequestHandler[] } = { handlers: [] };
  const router = { post: (path: string, ...handlers: RequestHandler[]) => Object.assign(registered, { method: 'post', path, handlers }) } as unknown as Router;
  bindRoute(router, rotate, ...steps);
  return registered;
}

describe('bindRoute', () => {
  it('registers the method on the Express path with the steps first, in order', () => {
    const step: RequestHandler = (_req, _res, next) => next();
    const { method, path, handlers } = bound(step, () => undefined);
    expect({ method, path }).toEqual({ method: 'post', path: '/admin/v1/tenants/:tenant/keys/:kid' });
    expect(handlers).toHaveLength(2);
    expect(handlers[0]).toBe(step);
  });

  it('hands the handler typed inputs, each parsed with the route’s schema only when asked for', async () => {
    const seen: unknown[] = [];
    const { handlers } = bound((_req, _res, input) => {
      seen.push(input.params(), input.query(), input.body());
    });
    const req = { params: { tenant: 'acme', kid: 'k1' }, query: {}, body: { key: 'primary' } } as unknown as Request;
    await handlers.at(-1)!(req, {} as Response, () => undefined);
    expect(seen).toEqual([{ tenant: 'acme', kid: 'k1' }, { limit: 10 }, { key: 'primary' }]);
  });

  it('refuses input the schema refuses with 400 invalid_request naming the field, and not before it is read', async () => {
    const order: string[] = [];
    const { handlers } = bound((_req, _res, input) => {
      order.push('handler');
      input.body();
    });
    const req = { params: { tenant: 'ACME!', kid: 'k1' }, query: {}, body: { key: 'tertiary' } } as unknown as Request;
    let thrown: unknown;
    try {
      await handlers.at(-1)!(req, {} as Response, () => undefined);
    } catch (err) {
      thrown = err;
    }
    expect(order).toEqual(['handler']);
    expect(thrown).toBeInstanceOf(InvalidRequest);
    expect({ status: (thrown as OAuthError).status, description: (thrown as OAuthError).description }).toMatchObject({ status: 400, description: expect.stringMatching(/^body\.key: /) });
  });
});
