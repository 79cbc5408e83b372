import { PublishResponse, ReceivedMessage, type Batch } from '@keyway/contracts';
import { call, createHttp, send, toApiError, type ClientOptions } from './http.ts';

export function topicClient(options: ClientOptions) {
  const http = createHttp({ ...options, timeoutMs: options.timeoutMs ?? 75_000 });
  const base = (tenant: string, topic: string) => `/tenants/${encodeURIComponent(tenant)}/topics/${encodeURIComponent(topic)}`;
  const message = (tenant: string, topic: string, sub: string, id: string, lockToken: string) =>
    `${base(tenant, topic)}/subscriptions/${encodeURIComponent(sub)}/messages/${encodeURIComponent(id)}/${encodeURIComponent(lockToken)}`;
  const auth = (sasKey: string) => ({ authorization: sasKey });
  const settle = async (method: 'delete' | 'put' | 'post', path: string, sasKey: string) => {
    const response = await send(() => http.request({ method, url: path, headers: auth(sasKey) }), 'topic');
    if (response.status < 200 || response.status >= 300) throw toApiError(response);
  };
  return {
    publish: (sasKey: string, batch: Batch) =>
      call(() => http.post(`${base(batch.tenant, batch.topic)}/messages`, batch, { headers: auth(sasKey) }), PublishResponse, 'topic'),
    /** peek-lock receive; null when nothing arrived within timeoutSec */
    receive: async (sasKey: string, tenant: string, topic: string, sub: string, timeoutSec: number, signal?: AbortSignal): Promise<ReceivedMessage | null> => {
      const response = await send(
        () =>
          http.post(`${base(tenant, topic)}/subscriptions/${encodeURIComponent(sub)}/messages/head`, undefined, {
            params: { timeout: timeoutSec },
            headers: auth(sasKey),
            signal,
          }),
        'topic',
      );
      if (response.status === 204) return null;
      if (response.status !== 201) throw toApiError(response);
      return ReceivedMessage.parse(response.data);
    },
    complete: (sasKey: string, tenant: string, topic: string, sub: string, id: string, lockToken: string) =>
      settle('delete', message(tenant, topic, sub, id, lockToken), sasKey),
    abandon: (sasKey: string, tenant: string, topic: string, sub: string, id: string, lockToken: string) =>
      settle('put', message(tenant, topic, sub, id, lockToken), sasKey),
    renewLock: (sasKey: string, tenant: string, topic: string, sub: string, id: string, lockToken: string) =>
      settle('post', message(tenant, topic, sub, id, lockToken), sasKey),
  };
}
export type TopicClient = ReturnType<typeof topicClient>;
