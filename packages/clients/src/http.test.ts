import type { AxiosAdapter, AxiosRequestConfig } from 'axios';
import { describe, expect, it } from 'vitest';
import { createHttp, type ClientOptions } from './http.ts';

/** a client whose requests end at an adapter that records them (headers as sent) */
function recording(options: Partial<Pick<ClientOptions, 'accessToken' | 'requestId'>>) {
  // no connection is made: the CA is never read
  const http = createHttp({ baseUrl: 'https://127.0.0.1:9', caPem: 'unused', ...options });
  const sent: AxiosRequestConfig[] = [];
  const adapter: AxiosAdapter = async (config) => {
    sent.push(config);
    return { status: 204, statusText: '', data: '', headers: {}, config };
  };
  http.defaults.adapter = adapter;
  return { http, sent };
}

describe('client http instance', () => {
  it('adds the request id and the bearer token, read per request; a request naming its own Authorization keeps it', async () => {
    let token = 'first';
    const { http, sent } = recording({ requestId: () => 'req-1', accessToken: () => token });
    await http.get('/a');
    token = 'second';
    await http.get('/b');
    await http.get('/c', { headers: { authorization: 'SharedAccessSignature sr=x' } });
    expect(sent.map((config) => [config.headers?.['x-request-id'], config.headers?.authorization])).toEqual([
      ['req-1', 'Bearer first'],
      ['req-1', 'Bearer second'],
      ['req-1', 'SharedAccessSignature sr=x'],
    ]);
  });

  it('adds neither when the client has no request id and no token', async () => {
    const { http, sent } = recording({});
    await http.get('/a', { headers: { authorization: 'SharedAccessSignature sr=x' } });
    expect(sent[0]?.headers?.['x-request-id']).toBeUndefined();
    expect(sent[0]?.headers?.authorization).toBe('SharedAccessSignature sr=x');
  });
});
