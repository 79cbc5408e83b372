import type { Readable } from 'node:stream';
import type { AxiosInstance, AxiosRequestConfig, AxiosResponse } from 'axios';
import type { Route, RouteAnswer, RouteRequest } from '@keyway/contracts';
import type { DpopSigner } from './dpop.ts';
import { DPOP_HEADER } from '@keyway/tokens';
import { FORM, form, send, toApiError } from './http.ts';

/** Per call: extra headers (a SAS key, an operator proof), an operator's own access token, an abort signal. */
export interface CallOptions extends Pick<AxiosRequestConfig, 'signal' | 'responseType' | 'timeout'> {
  headers?: Record<string, string>;
  /** sent as `Authorization: Bearer` instead of the client's own (the console forwards its operator's) */
  accessToken?: string;
  /** with a DPoP client: the credential the proof names in ath (the refresh token at PAC, the SAS key at the topic service) */
  dpopCredential?: string;
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
export function routeCaller(http: AxiosInstance, target: string, dpop?: DpopSigner) {
  /**
   * With `dpop`, every request carries a fresh proof (RFC 9449 §4), and an answer asking for the
   * server's nonce is sent once more with it (§8); a second refusal is the caller's answer.
   */
  const exchange = async <R extends Route>(route: R, ...[request, options = {}]: NoInfer<RouteArgs<R>>): Promise<AxiosResponse> => {
    const { headers = {}, accessToken, dpopCredential, ...config } = options;
    const asForm = route.body?.types?.[0] === FORM['content-type'];
    const body = request?.body;
    const url = urlOf(route, request?.params);
    const attempt = async (proof: string | undefined) =>
      send(
        () =>
          http.request({
            ...config,
            method: route.method,
            url,
            params: request?.query,
            data: asForm && body !== undefined ? form(body as Record<string, string | undefined>) : body,
            headers: { ...(asForm && FORM), ...(accessToken && { authorization: `Bearer ${accessToken}` }), ...headers, ...(proof && { [DPOP_HEADER]: proof }) },
          }),
        target,
      );
    if (!dpop) return attempt(undefined);
    const called = http.getUri({ url });
    const response = await attempt(await dpop.proof(route.method, called, dpopCredential));
    if (!dpop.observe(called, response)) return response;
    (response.data as Partial<Readable> | undefined)?.destroy?.();
    const again = await attempt(await dpop.proof(route.method, called, dpopCredential));
    dpop.observe(called, again);
    return again;
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
