/**
 * The current TLS material of a service, in one place for its listener and its outgoing clients:
 * read from files at start, re-read while running, so a renewed certificate (short-lived, see
 * dev-ca.ts, or cert-manager's) and a rotated CA bundle are used without a restart. A change that
 * does not make a usable whole (half-written files, key and certificate that do not match, an
 * expired certificate) is refused and the previous material kept: fail safe, never down.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ClientRequestArgs } from 'node:http';
import { Agent, type AgentOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { type SecureContext, createSecureContext } from 'node:tls';
import { DEFAULT_TRUST_DOMAIN } from './spiffe.ts';

export interface TlsMaterial {
  /** PEM certificate (chain) of this service: its server certificate and its mTLS client certificate */
  certPem: string;
  keyPem: string;
  /** PEM CA bundle: every CA whose certificates are trusted, several during a CA rotation */
  caPem: string;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface TlsSource {
  /** the SPIFFE trust domain peers must name (spiffe.ts) */
  readonly trustDomain: string;
  current(): TlsMaterial;
  /** counts accepted changes: connections made under an older generation used older material */
  readonly generation: number;
  /** called with the new material after each accepted change; returns unsubscribe */
  onChange(listener: (material: TlsMaterial) => void): () => void;
  /** stops watching (idempotent) */
  close(): void;
}

/** What watchTls tells about reloads; a Logger of @keyway/kit fits. */
interface ReloadLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, in order. */
function pemCertificates(pem: string): X509Certificate[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => new X509Certificate(block));
}

/**
 * Throws unless the material makes a usable whole at `now`: OpenSSL accepts key, certificate and
 * bundle together (the key matches the certificate), the bundle holds at least one certificate,
 * and the service certificate is within its validity.
 */
function checkTlsMaterial(material: TlsMaterial, now = Date.now()): X509Certificate {
  createSecureContext({ cert: material.certPem, key: material.keyPem, ca: material.caPem });
  if (pemCertificates(material.caPem).length === 0) throw new Error('the CA file holds no certificate');
  const [leaf] = pemCertificates(material.certPem);
  if (!leaf) throw new Error('the certificate file holds no certificate');
  if (Date.parse(leaf.validFrom) > now) throw new Error(`the certificate is not valid before ${leaf.validFrom}`);
  if (Date.parse(leaf.validTo) <= now) throw new Error(`the certificate expired ${leaf.validTo}`);
  return leaf;
}

function listeners() {
  const all = new Set<(material: TlsMaterial) => void>();
  return {
    add(listener: (material: TlsMaterial) => void) {
      all.add(listener);
      return () => void all.delete(listener);
    },
    emit(material: TlsMaterial, log?: ReloadLog) {
      for (const listener of all) {
        try {
          listener(material);
        } catch (err) {
          log?.warn('tls.apply_failed', { err });
        }
      }
    },
  };
}

/** Material that never changes (tests, tools). */
export function staticTls(material: TlsMaterial, trustDomain = DEFAULT_TRUST_DOMAIN): TlsSource {
  return { trustDomain, current: () => material, generation: 0, onChange: () => () => undefined, close: () => undefined };
}

const readAll = (files: TlsFiles) =>
  Promise.all([readFile(files.certFile, 'utf8'), readFile(files.keyFile, 'utf8'), readFile(files.caFile, 'utf8')]).then(([certPem, keyPem, caPem]) => ({ certPem, keyPem, caPem }));

const digest = (material: TlsMaterial) => createHash('sha256').update(material.certPem).update('\0').update(material.keyPem).update('\0').update(material.caPem).digest('hex');

const describe = (leaf: X509Certificate) => ({ serial: leaf.serialNumber, notAfter: leaf.validTo, san: leaf.subjectAltName });

interface WatchTlsOptions {
  trustDomain?: string;
  /** how often the files are read again (files replaced by rename, as cert-manager and the dev CA do, defeat fs.watch) */
  intervalMs: number;
  log?: ReloadLog;
}

export interface WatchedTls extends TlsSource {
  /** reads the files now; true when new material was accepted */
  reload(): Promise<boolean>;
}

/**
 * The material in `files`, read now (throws if it is not usable: a service does not start on bad
 * TLS) and again every `intervalMs`. Polling rather than fs.watch: Kubernetes secret volumes and
 * atomic renames swap the files under a watcher, and three small reads a few times a minute cost nothing.
 */
export function watchTls(files: TlsFiles, options: WatchTlsOptions): WatchedTls {
  const { log } = options;
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  let material: TlsMaterial = { certPem: readFileSync(files.certFile, 'utf8'), keyPem: readFileSync(files.keyFile, 'utf8'), caPem: readFileSync(files.caFile, 'utf8') };
  checkTlsMaterial(material);
  let seen = digest(material);
  let generation = 0;
  let reloading: Promise<boolean> | undefined;
  const subscribers = listeners();

  const attempt = async (): Promise<boolean> => {
    let next: TlsMaterial;
    try {
      next = await readAll(files);
    } catch (err) {
      log?.warn('tls.reload_failed', { reason: 'files unreadable', err, kept: 'previous certificate' });
      return false;
    }
    const nextDigest = digest(next);
    if (nextDigest === seen) return false;
    try {
      const leaf = checkTlsMaterial(next);
      material = next;
      generation += 1;
      log?.info('tls.reloaded', { generation, ...describe(leaf) });
      subscribers.emit(material, log);
      return true;
    } catch (err) {
      // a certificate written before its key is mismatched for a moment: retried next round, reported once
      log?.warn('tls.reload_failed', { reason: String((err as Error).message), kept: 'previous certificate' });
      return false;
    } finally {
      seen = nextDigest;
    }
  };
  const reload = () => (reloading ??= attempt().finally(() => (reloading = undefined)));

  const timer = setInterval(() => void reload(), options.intervalMs);
  timer.unref();
  return {
    trustDomain,
    current: () => material,
    get generation() {
      return generation;
    },
    onChange: subscribers.add,
    reload,
    close: () => clearInterval(timer),
  };
}

/**
 * An HTTPS agent whose new connections use the source's current material: the CA bundle it trusts
 * and, with `presentCertificate`, its client certificate (mTLS). Connections are pooled per
 * generation, so after a change no kept-alive connection or cached TLS session of the old
 * certificate is reused for a new request; requests already under way finish on theirs.
 */
export function reloadingAgent(source: TlsSource, options: AgentOptions & { presentCertificate: boolean }): Agent {
  const { presentCertificate, ...agentOptions } = options;
  let built: { generation: number; context: SecureContext } | undefined;
  const context = (): SecureContext => {
    if (built?.generation !== source.generation) {
      const { caPem, certPem, keyPem } = source.current();
      built = {
        generation: source.generation,
        context: createSecureContext({ ca: caPem, ...(presentCertificate && { cert: certPem, key: keyPem }), minVersion: 'TLSv1.2' }),
      };
    }
    return built.context;
  };

  class ReloadingAgent extends Agent {
    override getName(connection?: Parameters<Agent['getName']>[0]): string {
      return `${super.getName(connection)}:tls-generation-${source.generation}`;
    }
    override createConnection(connection: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void) {
      return super.createConnection({ ...connection, secureContext: context() } as ClientRequestArgs, callback);
    }
  }
  const agent = new ReloadingAgent({ minVersion: 'TLSv1.2', ...agentOptions });
  return agent;
}
