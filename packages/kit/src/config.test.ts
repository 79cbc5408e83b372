import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, configFields, parseConfig } from './config.ts';

const Env = z.object({ AMQP_URL: configFields.amqpUrl });

describe('AMQP_URL', () => {
  it('takes one node or the nodes of a cluster separated by commas', () => {
    expect(parseConfig(Env, { AMQP_URL: 'amqp://u:p@127.0.0.1:5672' }).AMQP_URL).toBe('amqp://u:p@127.0.0.1:5672');
    const cluster = 'amqp://u:p@rabbit-1:5672/keyway, amqps://u:p@rabbit-2:5671/keyway,amqp://u:p@rabbit-3';
    expect(parseConfig(Env, { AMQP_URL: cluster }).AMQP_URL).toBe(cluster);
    expect(parseConfig(Env, {}).AMQP_URL).toBeUndefined();
  });

  it.each(['http://u:secret-pw@rabbit-1:5672', 'amqp://u:secret-pw@rabbit-1:5672,rabbit-2:5672', ' , ', ''])('refuses %j without echoing the value', (value) => {
    let refused: unknown;
    try {
      parseConfig(Env, { AMQP_URL: value });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toContain('AMQP_URL');
    expect((refused as Error).message).not.toContain('secret-pw');
  });
});
