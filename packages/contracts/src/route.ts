import type { z } from 'zod';
import type { Method, OperationSpec, PathSpecs } from './openapi.ts';

/**
 * One operation, declared once: the server binds it (kit `bindRoute`), the client calls it
 * (clients `routeCaller`) and the OpenAPI document describes it (`pathsOf`), so a path or a
 * parameter schema is never spelled twice.
 */
export interface Route extends Omit<OperationSpec, 'path'> {
  method: Method;
  /** the OpenAPI path template: `{name}` for a path parameter */
  path: string;
  /** schemas of the path parameters; a parameter not listed is a plain string */
  params?: z.ZodObject;
  /** an internal API: the only services (client certificate SPIFFE ID spiffe://<trust domain>/<service>) that may call it; kit's bindRoute enforces it */
  callers?: readonly string[];
}

/** Declares a route; the identity, kept so the schemas' types reach servers and clients. */
export const route = <R extends Route>(declaration: R): R => declaration;

/** `{name}` (OpenAPI) → `:name` (Express). */
export const expressPath = (route: Pick<Route, 'path'>): string => route.path.replace(/\{([^}]+)\}/g, ':$1');

/** The OpenAPI path specs (`openApiDocument`, the endpoint fuzz) of a service's routes. */
export function pathsOf(routes: Record<string, Route>): PathSpecs {
  const paths: PathSpecs = {};
  for (const { method, path, params, callers: _callers, ...spec } of Object.values(routes)) {
    paths[path] ??= {};
    paths[path][method] = { ...spec, ...(params && { path: params }) };
  }
  return paths;
}

type Output<S> = S extends z.ZodType ? z.output<S> : undefined;
type Input<S> = S extends z.ZodType ? z.input<S> : undefined;
type BodySchema<R extends Route> = R['body'] extends { schema: infer S } ? S : undefined;

/** What a route accepts, as its schemas parse it (the server's view). */
export interface RouteInput<R extends Route> {
  params: Output<R['params']>;
  query: Output<R['query']>;
  body: Output<BodySchema<R>>;
}

/** What a caller sends (the client's view): path parameters as strings, query and body before defaults. */
export type RouteRequest<R extends Route> = (R['params'] extends z.ZodObject ? { params: Record<keyof z.input<R['params']>, string> } : { params?: undefined }) &
  (R['query'] extends z.ZodType ? { query?: Input<R['query']> } : { query?: undefined }) &
  (R['body'] extends { schema: z.ZodType } ? { body: Input<BodySchema<R>> } : { body?: undefined });

/** The answer of a route's declared success statuses: the schema's output, or undefined for a response without a body. */
export type RouteAnswer<R extends Route> = {
  [S in keyof R['responses']]: R['responses'][S] extends { schema: infer T } ? Output<T> : undefined;
}[keyof R['responses']];
