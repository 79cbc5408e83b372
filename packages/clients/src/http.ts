import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { ErrorBody } from '@keyway/contracts';
import type { DpopSigner } from './dpop.ts';
import { reloadingAgent, staticTls, type TlsSource } from '@keyway/tls';

/**
 * Whom a client trusts and which certificate it shows: a service passes its own TLS material
 * (`tls`, followed as its files are renewed); a tool or a test passes fixed PEM (`caPem`, `clientCert`).
 */
type ClientTls =
  | {
      /** this service's TLS material: its CA bundle, and (unless `anonymous`) its certificate for internal (mTLS) APIs; new connections use the latest */
      tls: TlsSource;
      /** trust the bundle but show no certificate (a call made on someone else's behalf, with their token) */
      anonymous?: boolean;
      caPem?: never;
      clientCert?: never;
    }
  | {
      /** PEM of the CA (bundle) that signs Keyway certificates */
      caPem: string;
      /** this caller's certificate, for internal (mTLS) APIs */
      clientCert?: { certPem: string; keyPem: string };
      tls?: never;
      anonymous?: never;
    };

export type ClientOptions = ClientTls & {
  baseUrl: string;
  /** an operator's access token (PAS `scope=operator`), sent as `Authorization: Bearer` to the admin APIs; read per request so a refreshed one is used */
  accessToken?: () => string | undefined;
  timeoutMs?: number;
  requestId?: () => string | undefined;
  /** the agent's DPoP key and nonces (RFC 9449): every call then carries a proof */
  dpop?: DpopSigner;
};

/** Per call: the bearer token of this one request, e.g. an operator's own token forwarded by the console. */
/** A non-2xx answer from a Keyway service, with its OAuth-shaped error body. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly description: string,
    /** the Retry-After of a 429 or 503 (RFC 9110 §10.2.3), to pass on */
    readonly retryAfter?: string,
  ) {
    super(`${status} ${code}: ${description}`);
  }
}

/** The service did not answer (connection refused, reset, timeout, TLS failure). */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
  constructor(
    readonly target: string,
    readonly causeCode: string | undefined,
  ) {
    super(`${target} did not answer${causeCode ? ` (${causeCode})` : ''}`);
  }
}

/**
 * A kept-alive connection is dropped after this long idle, or a second before the server's own
 * `Keep-Alive: timeout=` when that is sooner: Node heeds the server's hint only when the agent has a
 * timeout of its own, and without it reuses a connection the server is closing at that moment
 * (ECONNRESET on a loaded machine). Idle only: Node's agent destroys free sockets on it, never one in use.
 */
const IDLE_CONNECTION_MS = 60_000;

export function createHttp(options: ClientOptions): AxiosInstance {
  const agentOptions = { keepAlive: true, timeout: IDLE_CONNECTION_MS };
  const instance = axios.create({
    baseURL: options.baseUrl,
    timeout: options.timeoutMs ?? 10_000,
    httpsAgent: options.tls
      ? reloadingAgent(options.tls, { presentCertificate: !options.anonymous, ...agentOptions })
      : reloadingAgent(staticTls({ caPem: options.caPem, certPem: options.clientCert?.certPem ?? '', keyPem: options.clientCert?.keyPem ?? '' }), {
          presentCertificate: options.clientCert !== undefined,
          ...agentOptions,
        }),
    // Every status is handled by `call` so that error bodies become ApiErrors.
    validateStatus: () => true,
    maxRedirects: 0,
    proxy: false,
    // Node's: not looked for among xhr, http and fetch on every request
    adapter: 'http',
  });
  const { requestId, accessToken } = options;
  // Only a client that adds headers has the interceptor, and it runs synchronously: an interceptor
  // that is not marked so puts every request through a promise chain (a publish's hot path).
  if (requestId || accessToken)
    instance.interceptors.request.use(
      (config) => {
        const id = requestId?.();
        if (id) config.headers.set('x-request-id', id);
        const token = accessToken?.();
        // A request naming its own Authorization (a SAS key) keeps it.
        if (token && !config.headers.has('authorization')) config.headers.set('authorization', `Bearer ${token}`);
        return config;
      },
      undefined,
      { synchronous: true },
    );
  return instance;
}

/** For endpoints whose success has no body, or where a status other than 2xx is an answer (204). */
export async function send(request: () => Promise<AxiosResponse>, target: string): Promise<AxiosResponse> {
  try {
    return await request();
  } catch (err) {
    throw new UnreachableError(target, (err as { code?: string }).code);
  }
}

export function toApiError(response: AxiosResponse): ApiError {
  const parsed = ErrorBody.safeParse(response.data);
  const retryAfter = response.headers?.['retry-after'];
  return parsed.success
    ? new ApiError(response.status, parsed.data.error, parsed.data.error_description ?? '', typeof retryAfter === 'string' ? retryAfter : undefined)
    : new ApiError(response.status, response.status >= 500 ? 'server_error' : 'invalid_response', `unexpected ${response.status} answer`);
}

export const form = (fields: Record<string, string | undefined>) => {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) body.set(k, v);
  return body.toString();
};
export const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
