import type { Request, RequestHandler, Response, Router } from 'express';
import { expressPath, type Route, type RouteInput } from '@keyway/contracts';
import { requireContentType } from './app.ts';
import { parseInput } from './guard.ts';
import { requireService } from './service-auth.ts';

/**
 * A route's inputs, each parsed with the route's schema when first asked for (400 invalid_request
 * naming the field, as parseInput answers): the handler decides the order, so what it checks
 * first (a noise gate, an audit note) still comes before the input is judged.
 */
export interface RouteInputs<R extends Route> {
  params(): RouteInput<R>['params'];
  query(): RouteInput<R>['query'];
  body(): RouteInput<R>['body'];
}

export type RouteHandler<R extends Route> = (req: Request, res: Response, input: RouteInputs<R>) => unknown;

function inputsOf<R extends Route>(route: R, req: Request): RouteInputs<R> {
  const parsed = <T>(read: () => T) => {
    let value: { v: T } | undefined;
    return () => {
      value ??= { v: read() };
      return value.v;
    };
  };
  return {
    params: parsed(() => (route.params ? parseInput(route.params, req.params, 'path') : undefined) as RouteInput<R>['params']),
    query: parsed(() => (route.query ? parseInput(route.query, req.query, 'query') : undefined) as RouteInput<R>['query']),
    body: parsed(() => (route.body ? parseInput(route.body.schema, req.body, 'body') : undefined) as RouteInput<R>['body']),
  };
}

/**
 * Registers a declared route (packages/contracts) on the router: its method and path, the steps
 * before it in the order given (guards, content types, body parsers), then the handler with the
 * route's typed inputs.
 */
export function bindRoute<R extends Route>(router: Router, route: R, ...steps: [...RequestHandler[], RouteHandler<R>]): void {
  const handler = steps.pop() as RouteHandler<R>;
  // an internal API answers only the services its declaration lists (mTLS), before any other step
  const guard = route.callers ? [requireService(...route.callers)] : [];
  router[route.method](expressPath(route), ...guard, ...(steps as RequestHandler[]), (req: Request, res: Response) => handler(req, res, inputsOf(route, req)));
}

/** 415 unless the body is one of the media types the route declares (JSON when it names none). */
export const requireBodyType = (route: Pick<Route, 'body'>): RequestHandler => requireContentType(...(route.body?.types ?? ['application/json']));

/**
 * For a route whose body may be left out: no body passes, but a body of another media type is 415
 * rather than silently ignored (its fields would otherwise never be read).
 */
export const requireBodyTypeIfAny = (route: Pick<Route, 'body'>): RequestHandler => {
  const check = requireBodyType(route);
  return (req, res, next) => (Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined ? check(req, res, next) : next());
};
