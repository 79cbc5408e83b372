import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp } from '@keyway/clients';
import { SERVICES, startSuite, type ServiceName, type Suite } from '@keyway/testkit';

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite();
});
afterAll(() => suite?.close());

interface Layer {
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: unknown;
}

/** Every method and path an Express app routes, found by walking its router stack (Express 5: app.router.stack). */
function servedRoutes(app: unknown): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        expect(typeof layer.route.path).toBe('string');
        for (const method of Object.keys(layer.route.methods)) found.push(`${method.toUpperCase()} ${prefix}${layer.route.path as string}`);
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack, prefix + (typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : ''));
      }
    }
  };
  walk((app as { router: { stack: Layer[] } }).router.stack, '');
  // Express writes path parameters as :name, OpenAPI as {name}.
  return found.map((route) => route.replace(/:([A-Za-z0-9_]+)/g, '{$1}')).sort();
}

interface Document {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { security: Array<Record<string, unknown>>; responses: Record<string, unknown> }>>;
  components: { securitySchemes: Record<string, unknown> };
}

const documentedRoutes = (document: Document) =>
  Object.entries(document.paths)
    .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();

describe('OpenAPI 3.1 documents (GET /openapi.json, generated from the zod contracts)', () => {
  it.each(SERVICES)('%s documents exactly the routes it serves', async (service: ServiceName) => {
    const response = await createHttp({ baseUrl: suite.urls[service], caPem: suite.pki.ca.certPem }).get('/openapi.json');
    expect(response.status).toBe(200);
    const document = response.data as Document;
    expect(document.openapi).toMatch(/^3\.1\.\d+$/);
    expect(document.info).toMatchObject({ title: expect.stringContaining('Keyway'), version: expect.any(String) });

    expect(documentedRoutes(document)).toEqual(servedRoutes(suite.apps[service]));

    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        expect({ route: `${method} ${path}`, responses: Object.keys(operation.responses).length > 0 }).toEqual({ route: `${method} ${path}`, responses: true });
        for (const requirement of operation.security) {
          for (const scheme of Object.keys(requirement)) expect(document.components.securitySchemes).toHaveProperty(scheme);
        }
      }
    }
  });

  it('describes request and response bodies as JSON Schema from the contracts', async () => {
    const response = await createHttp({ baseUrl: suite.urls.entitlement, caPem: suite.pki.ca.certPem }).get('/openapi.json');
    const create = response.data.paths['/v1/tenants'].post;
    expect(create.security).toEqual([{ mutualTLS: [] }, { bearer: [] }]);
    expect(create.requestBody.content['application/json'].schema).toMatchObject({ type: 'object', required: ['id', 'name'] });
    expect(create.responses['201'].content['application/json'].schema.properties.status).toEqual({ type: 'string', enum: ['active', 'suspended'] });
    expect(create.responses['401'].content['application/json'].schema).toMatchObject({ required: ['error'] });
    const list = response.data.paths['/v1/tenants'].get;
    expect(list.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'limit', in: 'query', required: false }), expect.objectContaining({ name: 'cursor', in: 'query' })]));
    const webhook = response.data.paths['/v1/crm/webhook'].post;
    expect(webhook.security).toEqual([{ crmSignature: [] }]);
    const token = (await createHttp({ baseUrl: suite.urls.pas, caPem: suite.pki.ca.certPem }).get('/openapi.json')).data.paths['/oauth2/token'].post;
    expect(Object.keys(token.requestBody.content)).toEqual(['application/x-www-form-urlencoded']);
    expect(token.requestBody.content['application/x-www-form-urlencoded'].schema.oneOf).toHaveLength(4);
  });
});
