import { z } from 'zod';
import { ErrorBody } from './common.ts';

/**
 * A small OpenAPI 3.1 builder over the zod contracts (rule 7: one source for servers, clients and
 * documentation). OpenAPI 3.1 Schema Objects are JSON Schema 2020-12, which `z.toJSONSchema` emits:
 * request schemas as the server accepts them (`io: "input"`: defaults make a field optional),
 * response schemas as it answers them (`io: "output"`).
 */

/** The ways Keyway callers authenticate. */
const SECURITY_SCHEMES = {
  mutualTLS: { type: 'mutualTLS', description: 'a client certificate issued by the Keyway CA; its URI SAN spiffe://<trust domain>/<service> names the calling service (or `operator`)' },
  bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'an operator access token from PAS (`grant_type=password`, `scope=operator`), RFC 6750' },
  dpop: {
    type: 'http',
    scheme: 'dpop',
    bearerFormat: 'JWT',
    description: 'an access token from PAS bound to a key (token_type DPoP), with a proof signed by that key: `Authorization: DPoP <token>` and `DPoP: <proof>` (RFC 9449 §7.1)',
  },
  sas: {
    type: 'apiKey',
    in: 'header',
    name: 'Authorization',
    description: 'an Azure Service Bus shared access signature from PAC: `SharedAccessSignature sr=…&sig=…&se=…&skn=…`',
  },
  session: {
    type: 'apiKey',
    in: 'cookie',
    name: '__Host-keyway-releases',
    description: 'the releases site’s browser session (@keyway/web-session): signed in through PAS’s authorization code flow with PKCE',
  },
  metricsToken: { type: 'http', scheme: 'bearer', description: 'the METRICS_TOKEN the service was started with (a scraper’s secret, not a PAS token)' },
  crmSignature: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Keyway-Signature',
    description: '`v2=<hex HMAC-SHA256 of "v2:<X-Keyway-Timestamp>:<X-Keyway-Delivery or empty>\\n<raw body>">` keyed with CRM_WEBHOOK_SECRET; the timestamp must be within 5 minutes',
  },
} as const;
export type SecurityScheme = keyof typeof SECURITY_SCHEMES;

/** head and options: the tus 1.0 upload protocol (releases) uses them as operations of their own */
export type Method = 'get' | 'head' | 'post' | 'put' | 'patch' | 'delete' | 'options';

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** media type of the schema (default application/json) */
  type?: string;
}

export interface OperationSpec {
  summary: string;
  description?: string;
  /** each entry is one way to authenticate (alternatives); absent = no authentication */
  security?: SecurityScheme[];
  /** schemas of path parameters; a parameter not listed is a plain string */
  path?: z.ZodObject;
  query?: z.ZodObject;
  body?: { schema: z.ZodType; types?: string[]; required?: boolean };
  responses: Record<number, ResponseSpec>;
  /** statuses answered with an ErrorBody */
  errors?: number[];
}

/** Keys are OpenAPI path templates (`/v1/tenants/{tenant}`). */
export type PathSpecs = Record<string, Partial<Record<Method, OperationSpec>>>;

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description: string };
  paths: Record<string, Record<string, unknown>>;
  components: { securitySchemes: Record<string, unknown> };
}

const ERRORS: Record<number, string> = {
  400: 'invalid_request (or the OAuth error the endpoint names): the request is malformed',
  401: 'authentication failed (invalid_client, invalid_token)',
  403: 'authenticated, but not allowed (access_denied, insufficient_scope)',
  404: 'not_found',
  409: 'conflict: the resource exists already or changed meanwhile',
  410: 'lock_lost: the lock token no longer settles anything',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  416: 'range not satisfiable (Content-Range: bytes */<size>)',
  429: 'too_many_requests (Retry-After)',
  460: 'checksum mismatch (tus 1.0): the bytes received do not hash to the SHA-256 stated',
  503: 'temporarily_unavailable: a dependency does not answer (Retry-After)',
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function parameters(template: string, spec: OperationSpec): unknown[] {
  const pathNames = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const pathSchema = spec.path ? jsonSchema(spec.path, 'input') : { properties: {} };
  const pathProps = (pathSchema.properties ?? {}) as Record<string, unknown>;
  const params: unknown[] = pathNames.map((name) => ({ name, in: 'path', required: true, schema: pathProps[name] ?? { type: 'string' } }));
  if (spec.query) {
    const query = jsonSchema(spec.query, 'input');
    const required = (query.required ?? []) as string[];
    for (const [name, schema] of Object.entries((query.properties ?? {}) as Record<string, unknown>)) {
      params.push({ name, in: 'query', required: required.includes(name), schema });
    }
  }
  return params;
}

function operation(template: string, spec: OperationSpec): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(spec.responses)) {
    responses[status] = {
      description: response.description,
      ...(response.schema ? { content: { [response.type ?? 'application/json']: { schema: jsonSchema(response.schema, 'output') } } } : {}),
    };
  }
  const errorSchema = jsonSchema(ErrorBody, 'output');
  for (const status of spec.errors ?? []) {
    responses[String(status)] = { description: ERRORS[status] ?? 'error', content: { 'application/json': { schema: errorSchema } } };
  }
  const params = parameters(template, spec);
  return {
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    security: (spec.security ?? []).map((scheme) => ({ [scheme]: [] })),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(spec.body
      ? {
          requestBody: {
            required: spec.body.required ?? true,
            content: Object.fromEntries((spec.body.types ?? ['application/json']).map((type) => [type, { schema: jsonSchema(spec.body!.schema, 'input') }])),
          },
        }
      : {}),
    responses,
  };
}

/**
 * An operation whose callers authenticate in one of the `security` ways, answering the errors that
 * authentication brings besides the operation's own (OpenAPI orders responses by status anyway).
 */
export const authenticatedBy =
  (security: SecurityScheme[], errors: number[]) =>
  <S extends Pick<OperationSpec, 'summary' | 'responses' | 'errors'>>(spec: S): S & Pick<OperationSpec, 'security' | 'errors'> => ({ ...spec, security, errors: [...errors, ...(spec.errors ?? [])] });

/**
 * Internal callers only: the client certificates (mTLS, SPIFFE ID spiffe://<trust domain>/<service>) of `callers`, the access matrix's
 * row for this API (least privilege: a service is listed only where it makes the call); another
 * service's certificate is 403, none is 401.
 */
export const serviceOnly = <S extends Pick<OperationSpec, 'summary' | 'responses' | 'errors'>>(callers: readonly string[], spec: S) => ({
  ...authenticatedBy(['mutualTLS'], [401, 403])(spec),
  callers,
});

/** The admin APIs: the operator certificate, or an operator access token; 401 / 403 / 503 as requireOperator answers. */
export const operatorOnly = authenticatedBy(['mutualTLS', 'bearer'], [401, 403, 503]);

/** A JSON response. */
export const jsonResponse = <S extends z.ZodType>(schema: S, description: string) => ({ schema, description });
/** A response without a body. */
export const noBody = (description: string): ResponseSpec => ({ description });

const Readiness = z.object({ status: z.string(), checks: z.array(z.object({ name: z.string(), ok: z.boolean() })) });

/** What every service answers (packages/kit createBaseApp). */
export const BASE_PATHS: PathSpecs = {
  '/healthz': { get: { summary: 'alive', responses: { 200: { description: 'the process answers', schema: z.object({ status: z.literal('ok'), service: z.string() }) } } } },
  '/readyz': {
    get: {
      summary: 'ready: every dependency answers',
      responses: {
        200: jsonResponse(Readiness, 'ready'),
        503: jsonResponse(Readiness, 'a dependency does not answer'),
      },
    },
  },
  '/metrics': {
    get: {
      summary: 'Prometheus metrics (text exposition format); the path exists only when the service was started with METRICS_TOKEN',
      security: ['metricsToken'],
      responses: { 200: { description: 'every metric of the process', schema: z.string(), type: 'text/plain; version=0.0.4' } },
      errors: [401, 404],
    },
  },
  '/openapi.json': { get: { summary: 'this document', responses: { 200: { description: 'the OpenAPI 3.1 document', schema: z.looseObject({ openapi: z.string() }) } } } },
};

export function openApiDocument(info: { title: string; description: string }, paths: PathSpecs): OpenApiDocument {
  const all = { ...BASE_PATHS, ...paths };
  return {
    openapi: '3.1.0',
    info: { ...info, version: '1' },
    paths: Object.fromEntries(Object.entries(all).map(([template, methods]) => [template, Object.fromEntries(Object.entries(methods).map(([method, spec]) => [method, operation(template, spec)]))])),
    components: { securitySchemes: SECURITY_SCHEMES },
  };
}
