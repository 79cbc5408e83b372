import { Agent } from 'node:https';
import axios from 'axios';
import type { Suite } from '@keyway/testkit';

/**
 * A raw HTTPS client whose connections leave from `address` (any 127.0.0.0/8 address reaches the
 * services on loopback): a second source, as another user's machine would be.
 */
export function clientFrom(suite: Suite, service: keyof Suite['urls'], address: string, caller?: string) {
  const cert = caller ? suite.pki.certs[caller] : undefined;
  return axios.create({
    baseURL: suite.urls[service],
    httpsAgent: new Agent({ ca: suite.pki.ca.certPem, cert: cert?.certPem, key: cert?.keyPem, localAddress: address, keepAlive: true }),
    validateStatus: () => true,
    proxy: false,
    timeout: 30_000,
  });
}
