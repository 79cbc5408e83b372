import type { AxiosInstance, AxiosRequestConfig, AxiosResponse } from 'axios';
import type { Route, RouteAnswer, RouteRequest } from '@keyway/contracts';
import { FORM, form, send, toApiError } from './http.ts';

/** Per call: extra headers (a SAS key, an operator proof), an operator's own access token, an abort signal. */
export interface CallOptions extends Pick<AxiosRequestConfig, 'signal' | 'responseType' | 'timeout'> {
  headers?: Record<string, string>;
  /** sent as `Authorization: Bearer` instead of the client's own (the console forwards its operator's) */
  accessToken?: string;
}

/** A route's arguments: its request may be left out when the route takes no parameters and no body. */
type RouteArgs<R extends Route> = object extends RouteRequest<R> ? [request?: RouteRequest<R>, options?: CallOptions] : [request: RouteRequest<R>, options?: CallOptions];

/** The route's path with its parameters filled in, each percent-encoded. */
export const urlOf = (route: Pick<Route, 'path'>, params: Record<string, string> = {}): string => route.path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ''));

/**
 * Calls of declared routes (packages/contracts): method, path and body encoding (the route's first
 * media type) come from the route, and the answer is parsed with the schema the route declares for
 * its status; a status the route does not declare as a success is an ApiError.
 */
export function routeCaller(http: AxiosInstance, target: string) {
  const exchange = <R extends Route>(route: R, ...[request, options = {}]: NoInfer<RouteArgs<R>>): Promise<AxiosResponse> => {
    const { headers = {}, accessToken, ...config } = options;
    const asForm = route.body?.types?.[0] === FORM['content-type'];
    const body = request?.body;
    return send(
      () =>
        http.request({
          ...config,
          method: route.method,
          url: urlOf(route, request?.params),
          params: request?.query,
          data: asForm && body !== undefined ? form(body as Record<string, string | undefined>) : body,
          headers: { ...(asForm && FORM), ...(accessToken && { authorization: `Bearer ${accessToken}` }), ...headers },
        }),
      target,
    );
  };
  /** the status and the answer parsed for it */
  const answer = async <R extends Route>(route: R, ...args: NoInfer<RouteArgs<R>>): Promise<{ status: number; value: RouteAnswer<R> }> => {
    const response = await exchange(route, ...args);
    const declared = response.status >= 200 && response.status < 300 ? route.responses[response.status] : undefined;
    if (!declared) throw toApiError(response);
    return { status: response.status, value: (declared.schema ? declared.schema.parse(response.data) : undefined) as RouteAnswer<R> };
  };
  return {
    exchange,
    answer,
    call: async <R extends Route>(route: R, ...args: NoInfer<RouteArgs<R>>): Promise<RouteAnswer<R>> => (await answer(route, ...args)).value,
    /** 201 (created) or 200 (there already, or replaced), with the resource */
    upsert: async <R extends Route>(route: R, ...args: NoInfer<RouteArgs<R>>): Promise<RouteAnswer<R> & { created: boolean }> => {
      const { status, value } = await answer(route, ...args);
      return { ...(value as unknown as object), created: status === 201 } as RouteAnswer<R> & { created: boolean };
    },
  };
}
