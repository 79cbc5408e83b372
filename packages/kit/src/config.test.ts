import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, configFields, parseConfig, sharedConfig } from './config.ts';

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

describe('TRUST_DOMAIN and TLS_RELOAD_SEC', () => {
  const Tls = z.object({ TRUST_DOMAIN: sharedConfig.TRUST_DOMAIN, TLS_RELOAD_SEC: sharedConfig.TLS_RELOAD_SEC });

  it('default to keyway and 30 s; take a SPIFFE trust domain', () => {
    expect(parseConfig(Tls, {})).toEqual({ TRUST_DOMAIN: 'keyway', TLS_RELOAD_SEC: 30 });
    expect(parseConfig(Tls, { TRUST_DOMAIN: 'prod.example-1', TLS_RELOAD_SEC: '5' })).toEqual({ TRUST_DOMAIN: 'prod.example-1', TLS_RELOAD_SEC: 5 });
  });

  it.each([{ TRUST_DOMAIN: 'Keyway' }, { TRUST_DOMAIN: 'keyway/pas' }, { TRUST_DOMAIN: 'spiffe://keyway' }, { TRUST_DOMAIN: '' }, { TLS_RELOAD_SEC: '0' }])('refuses %j', (env) => {
    expect(() => parseConfig(Tls, env)).toThrow(ConfigError);
  });
});

describe('SHUTDOWN_DELAY_SEC and SHUTDOWN_DRAIN_SEC', () => {
  const Shutdown = z.object({ SHUTDOWN_DELAY_SEC: sharedConfig.SHUTDOWN_DELAY_SEC, SHUTDOWN_DRAIN_SEC: sharedConfig.SHUTDOWN_DRAIN_SEC });

  it('default to no delay and 20 s of drain', () => {
    expect(parseConfig(Shutdown, {})).toEqual({ SHUTDOWN_DELAY_SEC: 0, SHUTDOWN_DRAIN_SEC: 20 });
    expect(parseConfig(Shutdown, { SHUTDOWN_DELAY_SEC: '5', SHUTDOWN_DRAIN_SEC: '0' })).toEqual({ SHUTDOWN_DELAY_SEC: 5, SHUTDOWN_DRAIN_SEC: 0 });
  });

  it.each([{ SHUTDOWN_DELAY_SEC: '-1' }, { SHUTDOWN_DRAIN_SEC: 'soon' }, { SHUTDOWN_DRAIN_SEC: '601' }, { SHUTDOWN_DELAY_SEC: '1.5' }])('refuses %j', (env) => {
    expect(() => parseConfig(Shutdown, env)).toThrow(ConfigError);
  });
});
