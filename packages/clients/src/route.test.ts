import type { AxiosInstance, AxiosRequestConfig } from 'axios';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jsonResponse, noBody, pathsOf, route } from '@keyway/contracts';
import { ApiError } from './http.ts';
import { routeCaller, urlOf } from './route.ts';

const put = route({
  method: 'put',
  path: '/v1/things/{tenant}/items/{id}',
  summary: 'test route',
  params: z.object({ tenant: z.string(), id: z.string() }),
  body: { schema: z.object({ name: z.string(), note: z.string().optional() }), types: ['application/x-www-form-urlencoded'] },
  responses: { 200: jsonResponse(z.object({ id: z.string() }), 'replaced'), 201: jsonResponse(z.object({ id: z.string() }), 'created') },
});
const remove = route({ method: 'delete', path: '/v1/things', summary: 'test route', responses: { 204: noBody('removed') } });

/** an axios instance that records the request and answers `status` with `data` */
function fake(status: number, data: unknown) {
  const sent: AxiosRequestConfig[] = [];
  const http = {
    request: async (config: AxiosRequestConfig) => {
      sent.push(config);
      return { status, data, headers: {} };
    },
  } as unknown as AxiosInstance;
  return { sent, http };
}

describe('declared routes on the client side', () => {
  it('fills the path template with percent-encoded parameters', () => {
    expect(urlOf(put, { tenant: 'a/b', id: 'x y' })).toBe('/v1/things/a%2Fb/items/x%20y');
  });

  it('sends the method, the path and the body in the route’s first media type; answers the parsed body and whether it was created', async () => {
    const { sent, http } = fake(201, { id: 'i1', extra: true });
    const answer = await routeCaller(http, 'test').upsert(put, { params: { tenant: 't', id: 'i1' }, body: { name: 'n', note: undefined } }, { accessToken: 'tok' });
    expect(answer).toEqual({ id: 'i1', created: true });
    expect(sent[0]).toMatchObject({ method: 'put', url: '/v1/things/t/items/i1', data: 'name=n' });
    expect(sent[0]!.headers).toMatchObject({ 'content-type': 'application/x-www-form-urlencoded', authorization: 'Bearer tok' });
  });

  it('takes a status the route does not declare for an ApiError, and one without a body for undefined', async () => {
    await expect(routeCaller(fake(200, {}).http, 'test').call(remove)).rejects.toBeInstanceOf(ApiError);
    await expect(routeCaller(fake(204, '').http, 'test').call(remove)).resolves.toBeUndefined();
  });

  it('derives the OpenAPI path specs: one entry per path template, the parameters’ schema under `path`', () => {
    const paths = pathsOf({ put, remove });
    expect(Object.keys(paths)).toEqual(['/v1/things/{tenant}/items/{id}', '/v1/things']);
    expect(paths['/v1/things/{tenant}/items/{id}']!.put!.path).toBe(put.params);
    expect(paths['/v1/things']!.delete).not.toHaveProperty('method');
  });
});
