import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, PersistentVolumeClaim, Service as KubeService } from 'kubernetes-models/v1';
import type { IContainer, IPodSpec } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { AMQP_URL, REDIS_URL, type ServiceName } from '@keyway/testkit';
import { asParsed, commentedTelemetry, imageTag, PORTS, SECRET_KEYS, SERVICE_SCHEMAS, SERVICES, schemaKeys, type Service, describeStarted, unknownKey } from './manifests.ts';

/**
 * deploy/kubernetes rendered offline as `kubectl kustomize` does for `kubectl apply -k` (no cluster
 * here), every object validated against the Kubernetes schema (kubernetes-models), and the properties
 * an operator relies on checked on what would really be applied.
 */

const OVERLAYS = ['deploy/kubernetes/base', 'deploy/kubernetes/overlays/staging', 'deploy/kubernetes/overlays/production'];

/** The one model class per kind we ship; any other kind is a mistake. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'v1/Service': KubeService,
  'v1/ConfigMap': ConfigMap,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'batch/v1/Job': Job,
};

/**
 * Who calls whom (services/<svc>/src/build.ts: the clients each builds), the egress each
 * NetworkPolicy must allow exactly, with the config key naming the peer.
 */
const CALLS: Record<Service, Partial<Record<Service, string>>> = {
  idp: { pas: 'PAS_URL' },
  entitlement: { idp: 'IDP_URL', pas: 'PAS_URL', topic: 'TOPIC_URL', pac: 'PAC_URL', audit: 'AUDIT_URL', releases: 'RELEASES_URL' },
  pas: { idp: 'IDP_URL', entitlement: 'ENTITLEMENT_URL' },
  pac: { pas: 'PAS_URL', entitlement: 'ENTITLEMENT_URL' },
  topic: { pac: 'PAC_URL', entitlement: 'ENTITLEMENT_URL', topic: 'INSTANCE_URL' },
  audit: { pas: 'PAS_URL', entitlement: 'ENTITLEMENT_URL', topic: 'TOPIC_URL' },
  releases: { pas: 'PAS_URL', entitlement: 'ENTITLEMENT_URL' },
};

/** Settings that name a peer by its URL, which must be the URL the peer names itself by (issuer, audiences, SAS resource URIs). */
const NAMES_OF: Record<Service, Record<string, Service>> = {
  idp: { PAS_URL: 'pas', ENTITLEMENT_URL: 'entitlement' },
  entitlement: { PUBLIC_URL: 'entitlement', PAS_URL: 'pas', TOPIC_URL: 'topic', PAC_URL: 'pac', AUDIT_URL: 'audit', RELEASES_URL: 'releases' },
  pas: { PUBLIC_URL: 'pas', IDP_URL: 'idp', ACCESS_AUDIENCE: 'pac', ENTITLEMENT_URL: 'entitlement', AUDIT_URL: 'audit', RELEASES_AUDIENCE: 'releases' },
  pac: { PUBLIC_URL: 'pac', PAS_URL: 'pas', ENTITLEMENT_URL: 'entitlement', TOPIC_BASE_URL: 'topic' },
  topic: { PUBLIC_BASE_URL: 'topic', PAC_URL: 'pac', ENTITLEMENT_URL: 'entitlement' },
  audit: { PUBLIC_URL: 'audit', PAS_URL: 'pas', ENTITLEMENT_URL: 'entitlement', TOPIC_URL: 'topic' },
  releases: { PUBLIC_URL: 'releases', PAS_URL: 'pas', ENTITLEMENT_URL: 'entitlement' },
};
/** the key a service names itself by (the IdP, internal, is named by its callers only) */
const SELF_URL: Record<Exclude<Service, 'idp'>, string> = { entitlement: 'PUBLIC_URL', pas: 'PUBLIC_URL', pac: 'PUBLIC_URL', topic: 'PUBLIC_BASE_URL', audit: 'PUBLIC_URL', releases: 'PUBLIC_URL' };

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: unknown; data?: Record<string, string> };

function render(dir: string): Obj[] {
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  return parseAllDocuments(text).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${dir}: ${doc.errors[0]?.message}`);
    return doc.toJS() as Obj;
  });
}

const byKind = <T>(objects: Obj[], kind: string) => objects.filter((o) => o.kind === kind) as unknown as (Obj & T)[];
type Workload = {
  spec: {
    replicas?: number;
    serviceName?: string;
    podManagementPolicy?: string;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: IPodSpec };
  };
};
/** the services' pods: a Deployment each, the topic service's a StatefulSet (its pods need a DNS name each) */
const workloadsOf = (objects: Obj[]) => [...byKind<Workload>(objects, 'Deployment'), ...byKind<Workload>(objects, 'StatefulSet')];
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>) => selector !== undefined && Object.entries(selector).every(([k, v]) => labels[k] === v);
const serviceOf = (workload: Obj) => workload.metadata.name.replace(/^keyway-/, '') as Service;

/** The environment a container sees: its ConfigMaps (envFrom, in order) then its env, $(VAR) expanded. */
function environment(objects: Obj[], container: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const map = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === source.configMapRef?.name);
    if (!map) throw new Error(`ConfigMap ${source.configMapRef?.name} is not rendered`);
    Object.assign(env, map.data);
  }
  for (const variable of container.env ?? []) {
    env[variable.name] = variable.valueFrom?.fieldRef
      ? `field-${variable.valueFrom.fieldRef.fieldPath.replace(/\W/g, '-')}`
      : (variable.value ?? '').replace(/\$\((\w+)\)/g, (_, name: string) => env[name] ?? '');
  }
  return env;
}

/** The mount that holds `path` in `container`, and the volume behind it. */
function volumeHolding(spec: IPodSpec, container: IContainer, path: string) {
  const mount = container.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`));
  return mount && { mount, volume: spec.volumes?.find((v) => v.name === mount.name) };
}

const PART_OF = { 'app.kubernetes.io/part-of': 'keyway' };
/** What a Keyway pod may reach by port alone (they may run outside the cluster): PostgreSQL, Redis, RabbitMQ (AMQPS, AMQP), clamd. */
const INFRASTRUCTURE_PORTS = new Set([5432, 6379, 5671, 5672, 3310]);
/** the cluster DNS, the one rule naming a namespace */
const DNS_RULE = {
  to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
  ports: [
    { port: 53, protocol: 'UDP' },
    { port: 53, protocol: 'TCP' },
  ],
};
/** OTLP over HTTP (@keyway/telemetry refuses grpc), to a collector anywhere */
const OTLP_RULE = { ports: [{ port: 4318, protocol: 'TCP' }] };
/** Prometheus' namespace, the one other peer a service's ingress names */
const MONITORING = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } };

type Peer = { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: unknown };
type Rule = { to?: Peer[]; from?: Peer[]; ports?: { port: number; protocol?: string }[] };
type Policy = { metadata: { name: string }; spec: { podSelector: { matchLabels?: Record<string, string> }; policyTypes?: string[]; ingress?: Rule[]; egress?: Rule[] } };

/** the Keyway service a peer names by its pods' name label alone, or undefined */
const keywayPeer = (labels: Record<string, string> | undefined) => SERVICES.find((s) => labels !== undefined && Object.keys(labels).length === 1 && labels['app.kubernetes.io/name'] === `keyway-${s}`);
const isPodPeer = (peer: Peer) => Object.keys(peer).join() === 'podSelector' && keywayPeer(peer.podSelector?.matchLabels) !== undefined;
const tcp = (rule: Rule) => (rule.ports ?? []).length > 0 && (rule.ports ?? []).every((p) => p.protocol === 'TCP');

/**
 * Every rule of every NetworkPolicy that is not one we mean: egress only to a Keyway service on its port, the
 * DNS rule, OTLP/HTTP, or the infrastructure ports; ingress only on the service's own port, from Keyway services
 * or Prometheus' namespace. Whatever opens more (`{}`, an ipBlock, any namespace, another port) is named.
 */
function policyViolations(objects: Obj[]): string[] {
  const out: string[] = [];
  for (const { metadata, spec } of byKind<Policy>(objects, 'NetworkPolicy')) {
    if (metadata.name === 'keyway-default-deny') {
      if (spec.ingress !== undefined || spec.egress !== undefined) out.push(`${metadata.name} has rules`);
      continue;
    }
    if (metadata.name === 'keyway-dns-and-telemetry') {
      if (!isDeepStrictEqual(spec, { podSelector: { matchLabels: PART_OF }, policyTypes: ['Egress'], egress: [DNS_RULE, OTLP_RULE] }))
        out.push(`${metadata.name} is not DNS and OTLP/HTTP only: ${JSON.stringify(spec)}`);
      continue;
    }
    const own = spec.podSelector.matchLabels?.['app.kubernetes.io/name']?.replace(/^keyway-/, '');
    if (metadata.name !== `keyway-${own}` || !(own === 'migrate' || keywayPeer(spec.podSelector.matchLabels))) {
      out.push(`${metadata.name}: not a policy Keyway ships`);
      continue;
    }
    const port = own === 'migrate' ? undefined : PORTS[own as Service];
    const ports = (rule: Rule) => rule.ports?.map((p) => p.port);
    const egressMeant = (rule: Rule) =>
      tcp(rule) &&
      (rule.to === undefined
        ? (rule.ports ?? []).every((p) => INFRASTRUCTURE_PORTS.has(p.port))
        : rule.to.length > 0 && rule.to.every((peer) => isPodPeer(peer) && isDeepStrictEqual(ports(rule), [PORTS[keywayPeer(peer.podSelector?.matchLabels) as Service]])));
    const ingressMeant = (rule: Rule) =>
      tcp(rule) && isDeepStrictEqual(ports(rule), [port]) && (rule.from === undefined || (rule.from.length > 0 && rule.from.every((peer) => isPodPeer(peer) || isDeepStrictEqual(peer, MONITORING))));
    for (const [what, rules, meant] of [['egress', spec.egress, egressMeant] as const, ['ingress', spec.ingress, ingressMeant] as const]) {
      for (const rule of rules ?? []) if (!meant(rule)) out.push(`${metadata.name} ${what} ${JSON.stringify(rule)}`);
    }
  }
  return out;
}

/**
 * kubernetes-models' validate() accepts unknown fields (a typo'd `readinesProbe` passes, and the API server would
 * drop or refuse it), so the fields of each type are read from the validator it generated from Kubernetes'
 * OpenAPI schema (which tests each field as `void 0===data.<field>`), and any other key is named.
 */
const SCHEMAS = join(dirname(createRequire(import.meta.url).resolve('kubernetes-models')), '_schemas');
function fieldsOf(type: string): Set<string> {
  const code = readFileSync(join(SCHEMAS, `IoK8sApi${type}.js`), 'utf8');
  const name = /validate=function (validate\d+)\(/.exec(code)?.[1];
  const fields = new Set([...code.slice(code.indexOf('validate=function'), code.indexOf(`return ${name}.errors=`)).matchAll(/void 0===data\.(\w+)/g)].map((m) => m[1] as string));
  if (fields.size === 0) throw new Error(`no fields read for ${type}: has kubernetes-models' generated code changed?`);
  return fields;
}
/** where the checked types nest (the fields our manifests set, down to probes and security contexts) */
const POD_TEMPLATE = { template: 'CoreV1PodTemplateSpec' };
const NESTED: Record<string, Record<string, string>> = {
  AppsV1DeploymentSpec: POD_TEMPLATE,
  AppsV1StatefulSetSpec: POD_TEMPLATE,
  BatchV1JobSpec: POD_TEMPLATE,
  CoreV1PodTemplateSpec: { spec: 'CoreV1PodSpec' },
  CoreV1PodSpec: {
    securityContext: 'CoreV1PodSecurityContext',
    containers: 'CoreV1Container',
    initContainers: 'CoreV1Container',
    topologySpreadConstraints: 'CoreV1TopologySpreadConstraint',
    volumes: 'CoreV1Volume',
  },
  CoreV1Container: {
    livenessProbe: 'CoreV1Probe',
    readinessProbe: 'CoreV1Probe',
    startupProbe: 'CoreV1Probe',
    securityContext: 'CoreV1SecurityContext',
    resources: 'CoreV1ResourceRequirements',
    env: 'CoreV1EnvVar',
    envFrom: 'CoreV1EnvFromSource',
    volumeMounts: 'CoreV1VolumeMount',
    ports: 'CoreV1ContainerPort',
  },
  CoreV1Probe: { httpGet: 'CoreV1HTTPGetAction' },
};
const SPEC_TYPES: Record<string, string> = { Deployment: 'AppsV1DeploymentSpec', StatefulSet: 'AppsV1StatefulSetSpec', Job: 'BatchV1JobSpec' };
function unknownFields(type: string, value: object, path: string): string[] {
  const known = fieldsOf(type);
  return Object.entries(value).flatMap(([key, inner]) => {
    if (!known.has(key)) return [`${path}.${key}`];
    const innerType = NESTED[type]?.[key];
    if (innerType === undefined) return [];
    return Array.isArray(inner) ? inner.flatMap((item, i) => unknownFields(innerType, item, `${path}.${key}[${i}]`)) : unknownFields(innerType, inner, `${path}.${key}`);
  });
}
/** the unknown fields of every workload's spec, down to its containers */
const unknownWorkloadFields = (objects: Obj[]) =>
  objects.flatMap((o) => {
    const type = SPEC_TYPES[o.kind];
    return type ? unknownFields(type, o.spec as object, `${o.kind} ${o.metadata.name} spec`) : [];
  });

it('ships a telemetry block, commented out, that parses with @keyway/telemetry once uncommented', () => {
  const { keys, issues } = commentedTelemetry(readFileSync('deploy/kubernetes/base/config/common.env', 'utf8'));
  expect(keys).toEqual(expect.arrayContaining(['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS_FILE', 'OTEL_TRACES_SAMPLER']));
  expect(issues).toEqual([]);
});

describe.each(OVERLAYS)('kubectl kustomize %s', (dir) => {
  const objects = render(dir);
  const workloads = workloadsOf(objects);
  const policies = byKind<Policy>(objects, 'NetworkPolicy');

  it('renders only kinds we mean to ship, each valid against its Kubernetes schema', () => {
    expect(objects.length).toBeGreaterThan(30);
    for (const object of objects) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      expect(Model, `${object.kind} ${object.metadata.name}`).toBeDefined();
      if (Model) expect(() => new Model(object as never).validate(), `${object.kind} ${object.metadata.name}`).not.toThrow();
    }
    expect(workloads.map(serviceOf).sort()).toEqual([...SERVICES].sort());
    expect(unknownWorkloadFields(objects)).toEqual([]);
  });

  it("finds a misspelt field kubernetes-models' validate() lets through", () => {
    const misspelt = objects.map((o) => {
      if (o.kind !== 'StatefulSet') return o;
      const spec = structuredClone(o.spec) as Workload['spec'];
      const container = spec.template.spec.containers[0] as IContainer & { readinesProbe?: unknown };
      container.readinesProbe = container.readinessProbe;
      delete container.readinessProbe;
      return { ...o, spec };
    });
    const topic = misspelt.find((o) => o.kind === 'StatefulSet');
    expect(() => new StatefulSet(topic as never).validate()).not.toThrow();
    expect(unknownWorkloadFields(misspelt)).toEqual(['StatefulSet keyway-topic spec.template.spec.containers[0].readinesProbe']);
  });

  it('runs every container non-root (65532), read-only, without capabilities, under RuntimeDefault seccomp, with requests and limits', () => {
    const pods = [...workloads, ...byKind<Workload>(objects, 'Job')].map((o) => [o.metadata.name, o.spec.template.spec] as const);
    for (const [name, pod] of pods) {
      expect(pod.securityContext, name).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.automountServiceAccountToken, name).toBe(false);
      for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
        expect(container.securityContext, `${name}/${container.name}`).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        for (const bound of ['requests', 'limits'] as const) {
          expect(container.resources?.[bound], `${name}/${container.name} ${bound}`).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
        }
      }
    }
  });

  it('gives each service its image (contract item 6), its port, HTTPS probes on /healthz and /readyz, scrape annotations and a drain bound', () => {
    for (const workload of workloads) {
      const service = serviceOf(workload);
      const { spec, metadata } = workload.spec.template;
      const [container] = spec.containers;
      expect(spec.containers).toHaveLength(1);
      expect(container?.image).toBe(`keyway-${service}:${imageTag()}`);
      expect(container?.ports).toEqual([{ name: 'https', containerPort: PORTS[service], protocol: 'TCP' }]);
      expect(container?.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
      expect(container?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'https', scheme: 'HTTPS' });
      expect(metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/scheme': 'https', 'prometheus.io/port': String(PORTS[service]), 'prometheus.io/path': '/metrics' });
      const env = environment(objects, container as IContainer);
      expect(env.METRICS_TOKEN_FILE, service).toBeDefined();
      // the process must finish its drain (contract item 4) before the kubelet's SIGKILL
      const drain = Number(env.SHUTDOWN_DELAY_SEC ?? 0) + Number(env.SHUTDOWN_DRAIN_SEC ?? 20);
      expect(spec.terminationGracePeriodSeconds, service).toBeGreaterThan(drain);
      expect(env.HOST, `${service} must listen beyond loopback`).toBe('0.0.0.0');
      // replicas spread over nodes, each workload counting its own current pods only (the label its controller sets)
      const ownPods = workload.kind === 'StatefulSet' ? 'controller-revision-hash' : 'pod-template-hash';
      expect(spec.topologySpreadConstraints, service).toEqual([expect.objectContaining({ topologyKey: 'kubernetes.io/hostname', matchLabelKeys: [ownPods] })]);
    }
  });

  it("sets only keys the service's zod schema knows, and the whole setting parses with it", () => {
    for (const workload of workloads) {
      const service = serviceOf(workload);
      const container = workload.spec.template.spec.containers[0] as IContainer;
      const env = environment(objects, container);
      const composedFrom = new Set((container.env ?? []).flatMap((v) => [...(v.value ?? '').matchAll(/\$\((\w+)\)/g)].map((m) => m[1] as string)));
      const known = schemaKeys(SERVICE_SCHEMAS[service]);
      expect(
        Object.keys(env).flatMap((name) => unknownKey(name, known, composedFrom) ?? []),
        service,
      ).toEqual([]);
      const parsed = SERVICE_SCHEMAS[service].safeParse(asParsed(env));
      expect(parsed.error?.issues ?? [], service).toEqual([]);
    }
  });

  it('gives secrets only as files from Secret volumes (contract item 3), TLS from a Secret at /etc/keyway/tls', () => {
    for (const workload of workloads) {
      const { spec } = workload.spec.template;
      const container = spec.containers[0] as IContainer;
      const env = environment(objects, container);
      for (const key of SECRET_KEYS) expect(env[key], `${workload.metadata.name} sets ${key} in clear`).toBeUndefined();
      for (const [key, path] of Object.entries(env).filter(([key]) => key.endsWith('_FILE'))) {
        const held = volumeHolding(spec, container, path);
        expect(held?.volume, `${workload.metadata.name} ${key}=${path} is on no volume`).toBeDefined();
        const base = key.slice(0, -'_FILE'.length);
        if (SECRET_KEYS.includes(base)) {
          const sources = held?.volume?.projected?.sources?.map((s) => s.secret?.name) ?? [held?.volume?.secret?.secretName];
          expect(sources.every(Boolean), `${key} comes from Secrets only`).toBe(true);
        }
      }
      const tls = volumeHolding(spec, container, env.TLS_CERT_FILE ?? '');
      expect(tls?.mount.mountPath).toBe('/etc/keyway/tls');
      expect(tls?.volume?.secret?.secretName).toBe(`${workload.metadata.name}-tls`);
      expect(env.TLS_KEY_FILE).toBe('/etc/keyway/tls/tls.key');
      expect(env.TLS_CA_FILE).toBe('/etc/keyway/tls/ca.crt');
    }
    // no ConfigMap carries a secret's value
    for (const map of byKind(objects, 'ConfigMap')) for (const key of SECRET_KEYS) expect(map.data?.[key], `${map.metadata.name} holds ${key}`).toBeUndefined();
  });

  it('names every peer by the URL that peer names itself by', () => {
    const envOf = (service: Service) => {
      const workload = workloads.find((d) => serviceOf(d) === service) as Workload;
      return environment(objects, workload.spec.template.spec.containers[0] as IContainer);
    };
    const self: Record<string, string | undefined> = { idp: envOf('entitlement').IDP_URL };
    for (const [service, key] of Object.entries(SELF_URL)) self[service] = envOf(service as Service)[key];
    for (const service of SERVICES) {
      const env = envOf(service);
      for (const [key, peer] of Object.entries(NAMES_OF[service])) expect(`${service} ${key}=${env[key]}`).toBe(`${service} ${key}=${self[peer]}`);
    }
    expect(JSON.parse(envOf('pas').BROWSER_CLIENTS ?? '[]')).toEqual([expect.objectContaining({ redirect_uris: [`${self.releases}/oauth2/callback`] })]);
  });

  it('puts every Keyway pod (and only those) behind a default deny, and lets each service reach exactly its peers and be reached by its callers', () => {
    const deny = policies.find((p) => p.metadata.name === 'keyway-default-deny');
    expect(deny?.spec).toEqual({ podSelector: { matchLabels: PART_OF }, policyTypes: ['Ingress', 'Egress'] });
    for (const pod of [...workloads, ...byKind<Workload>(objects, 'Job')]) expect(matches(PART_OF, pod.spec.template.metadata.labels), pod.metadata.name).toBe(true);
    expect(policyViolations(objects)).toEqual([]);
    const podLabels = (service: Service) => (workloads.find((d) => serviceOf(d) === service) as Workload).spec.template.metadata.labels;
    for (const service of SERVICES) {
      const own = policies.filter((p) => p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'] === `keyway-${service}`);
      expect(own, `one NetworkPolicy of its own for ${service}`).toHaveLength(1);
      const policy = own[0] as (typeof policies)[number];
      expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      expect(matches(policy.spec.podSelector.matchLabels, podLabels(service))).toBe(true);
      // egress to other Keyway pods: exactly the services it calls, each on its port
      const egressPeers = (policy.spec.egress ?? []).flatMap((rule) =>
        (rule.to ?? []).flatMap((to) => (to.podSelector ? [`${keywayPeer(to.podSelector.matchLabels)}:${rule.ports?.map((p) => p.port).join(',')}`] : [])),
      );
      expect(egressPeers.sort(), service).toEqual(
        Object.keys(CALLS[service])
          .map((peer) => `${peer}:${PORTS[peer as Service]}`)
          .sort(),
      );
      // and each callee lets it in: from anyone on its port (public) or from this service by name
      for (const peer of Object.keys(CALLS[service]) as Service[]) {
        const theirs = policies.find((p) => p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'] === `keyway-${peer}`);
        const admits = (theirs?.spec.ingress ?? []).some(
          (rule) => rule.ports?.some((p) => p.port === PORTS[peer]) && (rule.from === undefined || rule.from.some((f) => keywayPeer(f.podSelector?.matchLabels) === service)),
        );
        expect(admits, `${peer} admits ${service}`).toBe(true);
      }
    }
    // the IdP answers only its callers: no rule open to everyone
    const idp = policies.find((p) => p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'] === 'keyway-idp');
    expect(idp?.spec.ingress?.every((rule) => rule.from !== undefined && rule.from.length > 0)).toBe(true);
    const migrate = policies.find((p) => p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'] === 'keyway-migrate');
    expect(migrate?.spec.egress).toEqual([{ ports: [{ port: 5432, protocol: 'TCP' }] }]);
  });

  it('finds an opening in any NetworkPolicy (the check above can fail)', () => {
    const opened = (name: string, rule: object, direction: 'egress' | 'ingress' = 'egress') =>
      policyViolations(
        objects.map((o) =>
          o.kind === 'NetworkPolicy' && o.metadata.name === name ? { ...o, spec: { ...(o.spec as object), [direction]: [...((o.spec as Record<string, object[]>)[direction] ?? []), rule] } } : o,
        ),
      );
    // an empty rule allows everything, anywhere
    expect(opened('keyway-topic', {})).not.toEqual([]);
    expect(opened('keyway-dns-and-telemetry', {})).not.toEqual([]);
    expect(opened('keyway-default-deny', {})).not.toEqual([]);
    expect(opened('keyway-idp', {}, 'ingress')).not.toEqual([]);
    expect(opened('keyway-pas', { to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] })).not.toEqual([]);
    expect(opened('keyway-pas', { to: [{ namespaceSelector: {} }], ports: [{ port: 8443, protocol: 'TCP' }] })).not.toEqual([]);
    expect(opened('keyway-pas', { ports: [{ port: 443, protocol: 'TCP' }] })).not.toEqual([]);
    expect(opened('keyway-pac', { to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'keyway-idp' } } }] })).not.toEqual([]);
  });

  it('calls each peer at a URL its Service answers (in-cluster names: https://keyway-<svc> on 443)', () => {
    const services = byKind<{ spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[]; clusterIP?: string } }>(objects, 'Service');
    for (const workload of workloads) {
      const labels = workload.spec.template.metadata.labels;
      const own = services.filter((s) => matches(s.spec.selector, labels) && s.spec.clusterIP !== 'None');
      expect(own.map((s) => s.metadata.name)).toEqual([workload.metadata.name]);
      expect(own[0]?.spec.ports).toEqual([{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
    }
    for (const service of SERVICES) {
      const workload = workloads.find((d) => serviceOf(d) === service) as Workload;
      const env = environment(objects, workload.spec.template.spec.containers[0] as IContainer);
      for (const [peer, key] of Object.entries(CALLS[service])) {
        const url = new URL(env[key] ?? 'https://unset');
        if (url.hostname.startsWith('keyway-') && !url.hostname.includes('.')) expect(`${key} ${url.hostname}:${url.port || 443}`).toBe(`${key} keyway-${peer}:443`);
      }
    }
  });

  it('scales the topic service out (replicas ≥ 2 and an autoscaler), each pod named for its peers (INSTANCE_URL)', () => {
    const topic = workloads.find((w) => serviceOf(w) === 'topic') as Obj & Workload;
    // only a StatefulSet's pods get hostname and subdomain, so only they have <pod>.<serviceName>.<namespace>.svc in DNS
    expect(topic.kind).toBe('StatefulSet');
    expect(topic.spec.podManagementPolicy).toBe('Parallel');
    expect(topic.spec.replicas).toBeGreaterThanOrEqual(2);
    const [hpa] = byKind<{ spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number } }>(objects, 'HorizontalPodAutoscaler');
    expect(hpa?.spec.scaleTargetRef).toMatchObject({ kind: 'StatefulSet', name: 'keyway-topic' });
    expect(hpa?.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa?.spec.maxReplicas).toBeGreaterThan(hpa?.spec.minReplicas ?? 0);
    const env = environment(objects, topic.spec.template.spec.containers[0] as IContainer);
    const serviceName = topic.spec.serviceName;
    // the headless Service governing the StatefulSet, with the not-ready (draining) pods still in DNS
    const headless = byKind<{ spec: { clusterIP?: string; publishNotReadyAddresses?: boolean; selector: Record<string, string> } }>(objects, 'Service').find((s) => s.metadata.name === serviceName);
    expect(headless?.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(matches(headless?.spec.selector, topic.spec.template.metadata.labels)).toBe(true);
    expect(env.INSTANCE_URL).toMatch(new RegExp(`^https://field-metadata-name\\.${serviceName}\\.field-metadata-namespace\\.svc:8445$`));
  });

  it('has one PodDisruptionBudget per service, selecting exactly its pods and never blocking a drain', () => {
    const budgets = byKind<{ spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable?: number; minAvailable?: number } }>(objects, 'PodDisruptionBudget');
    for (const workload of workloads) {
      const labels = workload.spec.template.metadata.labels;
      const own = budgets.filter((b) => matches(b.spec.selector.matchLabels, labels));
      expect(own, workload.metadata.name).toHaveLength(1);
      const budget = own[0]?.spec;
      expect((budget?.maxUnavailable ?? 0) >= 1 || (budget?.minAvailable ?? Infinity) < (workload.spec.replicas ?? 1)).toBe(true);
    }
    expect(budgets).toHaveLength(workloads.length);
  });

  it('migrates the database with `keyway db migrate` from a Job, as a role of its own', () => {
    const [job] = byKind<{ spec: { template: { spec: IPodSpec } } }>(objects, 'Job');
    const pod = job?.spec.template.spec as IPodSpec;
    const container = pod.containers[0] as IContainer;
    expect(container.image).toBe(`keyway-cli:${imageTag()}`);
    expect(container.args).toEqual(['db', 'migrate']);
    const path = container.env?.find((v) => v.name === 'DATABASE_URL_FILE')?.value ?? '';
    expect(volumeHolding(pod, container, path)?.volume?.secret?.secretName).toBe('keyway-migrate-secrets');
  });

  it('names in docs/deploy/kubernetes.md every Secret the manifests mount', () => {
    const docs = readFileSync('docs/deploy/kubernetes.md', 'utf8');
    const names = new Set(
      objects.flatMap((o) =>
        ((o.spec as Workload['spec'] | undefined)?.template?.spec.volumes ?? []).flatMap((v) =>
          [v.secret?.secretName, ...(v.projected?.sources ?? []).map((s) => s.secret?.name)].filter((n): n is string => n !== undefined),
        ),
      ),
    );
    expect(names.size).toBeGreaterThan(10);
    // the TLS Secrets, one per service, are documented as one pattern
    for (const name of names) expect(docs, name).toContain(`\`${name.replace(/^keyway-[a-z]+-tls$/, 'keyway-<svc>-tls')}\``);
  });
});

/** The staging overlay's settings for real: each pod's environment (ConfigMaps and env) and files. */
describeStarted('the staging overlay started', ({ pki, kek, checkpointKey, database }) => {
  const objects = render('deploy/kubernetes/overlays/staging');
  return workloadsOf(objects).map((workload) => {
    const service = serviceOf(workload);
    const pair = pki.certs[service] as { certPem: string; keyPem: string };
    return {
      service,
      env: environment(objects, workload.spec.template.spec.containers[0] as IContainer),
      files: {
        '/etc/keyway/tls/tls.crt': pair.certPem,
        '/etc/keyway/tls/tls.key': pair.keyPem,
        '/etc/keyway/tls/ca.crt': pki.ca.certPem,
        '/run/keyway/kek/kek.json': kek,
        '/run/secrets/keyway/database-url': database.serviceUrl(service as ServiceName),
        '/run/secrets/keyway/redis-url': REDIS_URL,
        '/run/secrets/keyway/amqp-url': AMQP_URL,
        '/run/secrets/keyway/metrics-token': 'a-metrics-token-for-the-staging-test',
        '/run/secrets/keyway/checkpoint.key': checkpointKey,
      },
    };
  });
});
