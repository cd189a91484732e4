/**
 * deploy/kubernetes/: every kustomization rendered by kustomize (kubectl kustomize), every object
 * checked against the Kubernetes API's schemas (kubernetes-models), and what the cluster would
 * not catch: every container probed on the health port its flags open, limited and unprivileged;
 * selectors that select; ports that are the ones the flags listen on; flags the services have;
 * Secrets the docs tell how to make; network policies that keep the registry and the executors to
 * our own pods; GPUs on the nvidia overlay only; autoscaling on metrics the routers export.
 * Nothing here reaches a cluster.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../integration/harness.ts';
import {
  containersOf, flagOf, KUBERNETES_DIR, KUSTOMIZATIONS, named, OPTIONAL_COMPONENTS, portOf, render, renderWithComponent, selects, workloads,
  type Container, type KubeObject,
} from './kubernetes-manifests.ts';
import { schemaProblems, typeProblems } from './kubernetes-schemas.ts';

const rendered: Record<string, KubeObject[]> = {};
const docs = readFileSync(join(REPO_ROOT, 'docs/kubernetes.md'), 'utf8');

beforeAll(async () => {
  for (const kustomization of KUSTOMIZATIONS) rendered[kustomization] = await render(kustomization);
  for (const component of OPTIONAL_COMPONENTS) rendered[`overlays/cpu + ${component}`] = await renderWithComponent('overlays/cpu', component);
}, 60_000);

/** Every rendering an operator may apply (the base alone is not one: its images are unnamed). */
const applied = () => Object.entries(rendered).filter(([name]) => name !== 'base');
const pods = (objects: KubeObject[]) => workloads(objects).map((workload) => ({ workload, pod: workload.spec.template.spec, containers: containersOf(workload) }));
/** The service a container runs: services/<service>/main.ts is its first argument. */
const serviceOf = (container: Container) => /^services\/([a-z]+)\/main\.ts$/.exec(container.args?.[0] ?? '')?.[1];
const portNamed = (container: Container, name: string) => container.ports?.find((port) => port.name === name)?.containerPort;

describe('kustomize renders', () => {
  it('every kustomization, each object in the nexus namespace', () => {
    for (const [name, objects] of Object.entries(rendered)) {
      expect(objects.length, name).toBeGreaterThan(15);
      for (const object of objects) {
        if (object.kind === 'Namespace') expect(object.metadata.name).toBe('nexus');
        else expect(object.metadata.namespace, `${name}: ${object.kind}/${object.metadata.name}`).toBe('nexus');
      }
    }
  });

  it('the three services in every overlay, with an image for each that names a tag', () => {
    for (const [name, objects] of applied()) {
      expect(workloads(objects).map((workload) => workload.metadata.name).sort(), name).toEqual(['nexus-executor', 'nexus-registry', 'nexus-router']);
      for (const { containers } of pods(objects)) for (const container of containers) expect(container.image, name).toMatch(/^[^:]+:[\w.-]+$/);
    }
  });
});

describe('the Kubernetes API schemas', () => {
  it('accept every object (kubernetes-models validators)', () => {
    for (const [name, objects] of Object.entries(rendered)) expect(schemaProblems(objects), name).toEqual([]);
  });

  it('know every field (each object satisfies its model\'s TypeScript interface)', async () => {
    expect(await typeProblems(rendered)).toEqual([]);
  }, 60_000);

  it('refuse what they should: a string replica count, an unknown field', async () => {
    const deployment = structuredClone(named(rendered['overlays/cpu'], 'Deployment', 'nexus-router'));
    deployment.spec.replicas = 'two';
    expect(schemaProblems([deployment])).toEqual([expect.stringContaining('spec/replicas must be integer')]);
    const misspelt = structuredClone(named(rendered['overlays/cpu'], 'Deployment', 'nexus-router'));
    misspelt.spec.template.spec.containers[0].readinesProbe = misspelt.spec.template.spec.containers[0].readinessProbe;
    expect(await typeProblems({ misspelt: [misspelt] })).toEqual([expect.stringMatching(/Deployment\/nexus-router error TS2353: .*readinesProbe.* does not exist in type 'IContainer'/)]);
  }, 60_000);
});

describe('every container', () => {
  it('is probed over gRPC health on the port --health-address opens: liveness and readiness services', () => {
    for (const [name, objects] of applied()) {
      for (const { containers } of pods(objects)) {
        for (const container of containers) {
          const where = `${name}: ${container.name}`;
          const healthPort = portOf(flagOf(container, '--health-address') ?? ':0');
          expect(portNamed(container, 'health'), where).toBe(healthPort);
          expect(container.livenessProbe?.grpc, where).toEqual({ port: healthPort, service: 'liveness' });
          expect(container.readinessProbe?.grpc, where).toEqual({ port: healthPort, service: 'readiness' });
          if (container.startupProbe) expect(container.startupProbe.grpc, where).toEqual({ port: healthPort, service: 'liveness' });
        }
      }
    }
  });

  it('has CPU and memory requests and limits', () => {
    for (const [name, objects] of applied()) {
      for (const { containers } of pods(objects)) {
        for (const container of containers) {
          for (const kind of ['requests', 'limits'] as const) {
            expect(Object.keys(container.resources?.[kind] ?? {}), `${name}: ${container.name} ${kind}`).toEqual(expect.arrayContaining(['cpu', 'memory']));
          }
        }
      }
    }
  });

  it('runs as a non-root user, with no privileges and a read-only root file system (a writable /tmp mounted)', () => {
    for (const [name, objects] of applied()) {
      for (const { workload, pod, containers } of pods(objects)) {
        const where = `${name}: ${workload.metadata.name}`;
        expect(pod.securityContext, where).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
        expect(pod.securityContext.runAsUser, where).toBeGreaterThan(0);
        expect(pod.automountServiceAccountToken, where).toBe(false);
        expect(pod.hostNetwork ?? false, where).toBe(false);
        for (const container of containers) {
          expect(container.securityContext, where).toMatchObject({
            runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] },
          });
          expect(container.securityContext.privileged ?? false, where).toBe(false);
          expect(container.volumeMounts?.some((mount) => mount.mountPath === '/tmp' && !mount.readOnly), where).toBe(true);
        }
      }
    }
  });

  it('runs a service entry point that exists, with flags that service has', () => {
    for (const [name, objects] of applied()) {
      for (const { containers } of pods(objects)) {
        for (const container of containers) {
          const service = serviceOf(container);
          expect(service, `${name}: ${container.name} runs ${container.args?.[0]}`).toBeDefined();
          const source = readFileSync(join(REPO_ROOT, 'services', service!, 'main.ts'), 'utf8');
          const known = new Set([...source.matchAll(/['"`](--[a-z0-9-]+)[\s'"`<]/g)].map((match) => match[1]));
          for (const arg of container.args!.slice(1).filter((candidate) => candidate.startsWith('--'))) {
            expect(known, `${name}: ${service} has no flag ${arg}`).toContain(arg.split('=')[0]);
          }
        }
      }
    }
  });

  it('mounts only volumes the pod has, and every Secret it uses is one docs/kubernetes.md says how to make', () => {
    for (const [name, objects] of applied()) {
      const configMaps = new Set(objects.filter((object) => object.kind === 'ConfigMap').map((object) => object.metadata.name));
      for (const { workload, pod, containers } of pods(objects)) {
        type Volume = { name: string; secret?: { secretName: string }; configMap?: { name: string }; hostPath?: object };
        const volumes = new Map<string, Volume>(pod.volumes.map((volume: Volume) => [volume.name, volume]));
        for (const container of containers) {
          for (const mount of container.volumeMounts ?? []) expect(volumes.has(mount.name), `${name}: ${workload.metadata.name} mounts ${mount.name}`).toBe(true);
          for (const source of container.envFrom ?? []) {
            if (source.configMapRef && !source.configMapRef.optional) expect(configMaps, name).toContain(source.configMapRef.name);
            if (source.secretRef) expect(docs, `docs/kubernetes.md names Secret ${source.secretRef.name}`).toContain(`\`${source.secretRef.name}\``);
          }
          for (const variable of container.env ?? []) {
            const fromMap = variable.valueFrom?.configMapKeyRef;
            if (fromMap) expect(configMaps.has(fromMap.name) && objects.some((object) => object.metadata.name === fromMap.name && fromMap.key in (object.data ?? {})), `${name}: ${variable.name}`).toBe(true);
            const fromSecret = variable.valueFrom?.secretKeyRef;
            if (fromSecret) expect(docs).toContain(`\`${fromSecret.name}\``);
          }
        }
        for (const volume of volumes.values()) {
          if (volume.secret) expect(docs, `docs/kubernetes.md names Secret ${volume.secret.secretName}`).toContain(`\`${volume.secret.secretName}\``);
          if (volume.configMap) expect(configMaps, name).toContain(volume.configMap.name);
          expect(volume.hostPath, `${name}: ${volume.name} is not a hostPath`).toBeUndefined();
        }
      }
    }
  });
});

describe('selectors and ports', () => {
  it('workloads select their own pods, and Services, budgets and policies select workloads', () => {
    for (const [name, objects] of applied()) {
      const templates = workloads(objects).map((workload) => workload.spec.template.metadata.labels as Record<string, string>);
      for (const workload of workloads(objects)) expect(selects(workload.spec.selector.matchLabels, workload.spec.template.metadata.labels), name).toBe(true);
      for (const object of objects) {
        const selector = object.kind === 'Service' ? object.spec.selector
          : object.kind === 'PodDisruptionBudget' ? object.spec.selector.matchLabels
            : object.kind === 'NetworkPolicy' ? object.spec.podSelector.matchLabels : undefined;
        if (selector === undefined) continue;
        const matching = templates.filter((labels) => selects(selector, labels)).length;
        // Only the default-deny policy (an empty selector) selects every pod.
        expect(matching, `${name}: ${object.kind}/${object.metadata.name}`).toBe(Object.keys(selector).length === 0 ? templates.length : 1);
      }
    }
  });

  it('each service listens where its Service, metrics annotation and scrape point', () => {
    for (const [name, objects] of applied()) {
      for (const { workload, containers } of pods(objects)) {
        const [container] = containers;
        expect(portNamed(container, 'grpc'), name).toBe(portOf(flagOf(container, '--address')!));
        expect(portNamed(container, 'metrics'), name).toBe(portOf(flagOf(container, '--metrics-address')!));
        // The router's HTTP port (KServe v2 REST, the OpenAI API), said outright rather than left to its default.
        if (workload.metadata.name === 'nexus-router') expect(portNamed(container, 'http'), name).toBe(portOf(flagOf(container, '--http-address')!));
        expect(flagOf(container, '--address')).toMatch(/^0\.0\.0\.0:/);
        expect(workload.spec.template.metadata.annotations['prometheus.io/port'], name).toBe(String(portNamed(container, 'metrics')));
        const service = named(objects, 'Service', workload.metadata.name);
        for (const port of service.spec.ports) {
          expect(portNamed(container, port.targetPort), `${name}: ${service.metadata.name} ${port.name}`).toBe(port.port);
        }
        // The health port is for the kubelet alone; no Service carries it.
        expect(service.spec.ports.map((port: { name: string }) => port.name), name).not.toContain('health');
      }
    }
  });

  it('routers and executors dial the registry\'s Service, and routers find executors by the headless Service', () => {
    for (const [name, objects] of applied()) {
      const registry = named(objects, 'Service', 'nexus-registry');
      const router = containersOf(named(objects, 'Deployment', 'nexus-router'))[0];
      const executor = containersOf(named(objects, 'Deployment', 'nexus-executor'))[0];
      for (const client of [router, executor]) {
        expect(flagOf(client, '--registry'), name).toBe(`${registry.metadata.name}:${registry.spec.ports.find((port: { name: string }) => port.name === 'grpc').port}`);
        expect(flagOf(client, '--tls-dir'), name).toBe('/tls');
      }
      const [dnsName, dnsPort] = flagOf(router, '--executors-dns')!.split(':');
      const headless = named(objects, 'Service', dnsName);
      expect(headless.spec.clusterIP, name).toBe('None');
      expect(headless.spec.publishNotReadyAddresses ?? false, name).toBe(false);
      expect(selects(headless.spec.selector, named(objects, 'Deployment', 'nexus-executor').spec.template.metadata.labels), name).toBe(true);
      expect(Number(dnsPort), name).toBe(portNamed(executor, 'grpc'));
      expect(router.args, name).not.toContainEqual(expect.stringMatching(/^--executor=/));
    }
  });
});

describe('network policies', () => {
  const ingressFor = (objects: KubeObject[], component: string) =>
    objects.filter((object) => object.kind === 'NetworkPolicy' && object.spec.podSelector.matchLabels?.['app.kubernetes.io/component'] === component)
      .flatMap((policy) => policy.spec.ingress ?? []);
  const portsOf = (rule: { ports?: Array<{ port: number }> }) => (rule.ports ?? []).map((port) => port.port);

  it('deny by default, let only our own pods reach the registry and only routers the executors', () => {
    for (const [name, objects] of applied()) {
      expect(named(objects, 'NetworkPolicy', 'nexus-default-deny').spec, name).toEqual({ podSelector: {}, policyTypes: ['Ingress'] });
      const ours = objects.find((object) => object.kind === 'Deployment')!.metadata.labels!['app.kubernetes.io/part-of'];
      for (const rule of ingressFor(objects, 'registry').filter((candidate) => portsOf(candidate).includes(8011))) {
        expect(rule.from, name).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/part-of': ours } } }]);
      }
      for (const rule of ingressFor(objects, 'executor').filter((candidate) => portsOf(candidate).includes(8021))) {
        expect(rule.from, name).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'nexusml', 'app.kubernetes.io/component': 'router' } } }]);
      }
      // Every rule names its ports, and only the routers' public ports are open to all.
      for (const component of ['registry', 'router', 'executor']) {
        for (const rule of ingressFor(objects, component)) {
          expect(portsOf(rule).length, `${name}: ${component}`).toBeGreaterThan(0);
          if (!rule.from) expect(`${component}:${portsOf(rule)}`, name).toBe('router:8001,8000');
        }
      }
    }
  });
});

describe('hardware and autoscaling', () => {
  const executorOf = (objects: KubeObject[]) => named(objects, 'Deployment', 'nexus-executor');
  const metricNames = new Set([...readFileSync(join(REPO_ROOT, 'services/telemetry/metrics.ts'), 'utf8').matchAll(/name: '(nexus_[a-z_]+)'/g)].map((match) => match[1]));

  it('gives each executor one NVIDIA GPU on the nvidia overlays, tolerated and selected, with Vulkan in the driver capabilities', () => {
    for (const overlay of ['overlays/nvidia', 'overlays/nvidia-keda']) {
      const executor = executorOf(rendered[overlay]);
      const [container] = containersOf(executor);
      expect(container.resources, overlay).toMatchObject({ requests: { 'nvidia.com/gpu': 1 }, limits: { 'nvidia.com/gpu': 1 } });
      expect(executor.spec.template.spec.tolerations, overlay).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
      expect(Object.keys(executor.spec.template.spec.nodeSelector ?? {}).length, overlay).toBeGreaterThan(0);
      expect(container.env?.find((variable) => variable.name === 'NVIDIA_DRIVER_CAPABILITIES')?.value, overlay).toMatch(/(^|,)graphics(,|$)/);
      expect(container.image, overlay).toMatch(/-nvidia$/);
      // Routers and registries need no GPU and run the common image.
      for (const other of ['nexus-router', 'nexus-registry']) expect(containersOf(named(rendered[overlay], 'Deployment', other))[0].image).not.toMatch(/nvidia/);
    }
    const cpu = containersOf(executorOf(rendered['overlays/cpu']))[0];
    expect(JSON.stringify(cpu.resources)).not.toContain('nvidia.com/gpu');
    expect(cpu.image).not.toMatch(/nvidia/);
  });

  it('scales routers on CPU everywhere, executors by one autoscaler at most', () => {
    for (const [name, objects] of applied()) {
      const routerHpa = named(objects, 'HorizontalPodAutoscaler', 'nexus-router');
      expect(routerHpa.spec.metrics, name).toEqual([{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }]);
      const scalers = objects.filter((object) => (object.kind === 'HorizontalPodAutoscaler' || object.kind === 'ScaledObject') && object.spec.scaleTargetRef.name === 'nexus-executor');
      expect(scalers.length, name).toBeLessThanOrEqual(1);
      for (const object of objects.filter((candidate) => candidate.spec?.scaleTargetRef)) named(objects, 'Deployment', object.spec.scaleTargetRef.name);
    }
    expect(named(rendered['overlays/nvidia'], 'HorizontalPodAutoscaler', 'nexus-executor').kind).toBe('HorizontalPodAutoscaler');
    expect(named(rendered['overlays/nvidia-keda'], 'ScaledObject', 'nexus-executor').kind).toBe('ScaledObject');
  });

  it('scales executors on the routers\' queue metrics, through prometheus-adapter rules that make them', () => {
    const hpa = named(rendered['overlays/nvidia'], 'HorizontalPodAutoscaler', 'nexus-executor');
    const rules = parse(readFileSync(join(KUBERNETES_DIR, 'components/executor-autoscaling-hpa/prometheus-adapter-rules.yaml'), 'utf8')).rules.external as Array<{
      seriesQuery: string; name: { as: string }; metricsQuery: string; resources: object;
    }>;
    const external = hpa.spec.metrics.map((metric: { external: { metric: { name: string } } }) => metric.external.metric.name);
    expect(external.sort()).toEqual(rules.map((rule) => rule.name.as).sort());
    for (const rule of rules) {
      const series = /^(nexus_[a-z_]+?)(_bucket)?\{/.exec(rule.seriesQuery);
      expect(metricNames, rule.seriesQuery).toContain(series?.[1]);
      expect(rule.resources).toEqual({ overrides: { namespace: { resource: 'namespace' } } });
      expect(rule.metricsQuery).toContain('<<.LabelMatchers>>');
    }
    const keda = named(rendered['overlays/nvidia-keda'], 'ScaledObject', 'nexus-executor');
    for (const trigger of keda.spec.triggers) {
      expect(trigger.type).toBe('prometheus');
      const used = [...trigger.metadata.query.matchAll(/(nexus_[a-z_]+?)(?:_bucket)?\{/g)].map((match) => match[1]);
      expect(used.length).toBeGreaterThan(0);
      for (const metric of used) expect(metricNames).toContain(metric);
      expect(trigger.metadata.query).toContain('namespace="nexus"');
    }
    expect(docs).toContain('nexus_queue_depth');
    expect(docs).toContain('nexus_queue_time_seconds');
  });

  it('scrapes every Service with a metrics port (ServiceMonitor) where the Prometheus Operator is assumed', () => {
    for (const overlay of ['overlays/nvidia', 'overlays/nvidia-keda']) {
      const monitor = named(rendered[overlay], 'ServiceMonitor', 'nexusml');
      const scraped = rendered[overlay].filter((object) => object.kind === 'Service' && selects(monitor.spec.selector.matchLabels, object.metadata.labels));
      expect(scraped.map((service) => service.metadata.name).sort()).toEqual(['nexus-executor', 'nexus-registry', 'nexus-router']);
      for (const service of scraped) expect(service.spec.ports.map((port: { name: string }) => port.name)).toContain(monitor.spec.endpoints[0].port);
    }
  });
});
