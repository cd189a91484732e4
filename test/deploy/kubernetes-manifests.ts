/**
 * The Kubernetes manifests as the cluster would get them: every kustomization under
 * deploy/kubernetes/ rendered by kustomize itself (`kubectl kustomize`, kustomize v5), parsed into
 * objects, with the few lookups the tests make of them.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../integration/harness.ts';

export const KUBERNETES_DIR = join(REPO_ROOT, 'deploy/kubernetes');

/** Rendered YAML read as plain JSON; the schema tests check its shape, these helpers only read it. */
type Json = any;

/** A rendered object, as loose JSON (the schema tests give it its type). */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Json;
  data?: Record<string, string>;
}

/** Every kustomization a deployment applies: the overlays, and the base alone. */
export const KUSTOMIZATIONS = ['base', 'overlays/cpu', 'overlays/nvidia', 'overlays/nvidia-keda'] as const;
/** Components no overlay includes, rendered on top of the cpu overlay. */
export const OPTIONAL_COMPONENTS = ['components/jwt'] as const;

/** Runs kustomize through kubectl; fails saying what to install when there is none. */
async function kustomize(dir: string, extraArgs: string[] = []): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('kubectl', ['kustomize', ...extraArgs, dir], { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') throw new Error('kubectl is needed to render the manifests with kustomize (kubectl 1.27 or later, kustomize v5): install kubectl');
    throw new Error(`kubectl kustomize ${dir} failed: ${failure.stderr ?? failure.message}`);
  }
}

function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text).map((document) => {
    if (document.errors.length > 0) throw new Error(`kustomize wrote YAML that does not parse: ${document.errors[0].message}`);
    return document.toJS() as KubeObject;
  }).filter((object) => object !== null);
}

/** Renders one kustomization under deploy/kubernetes/ (its path relative to it). */
export async function render(kustomization: string): Promise<KubeObject[]> {
  return parseObjects(await kustomize(join(KUBERNETES_DIR, kustomization)));
}

/**
 * Renders `overlay` with `component` added, as an operator's own kustomization would include it:
 * from a directory outside the repository, so kustomize is told to load from beyond its root.
 */
export async function renderWithComponent(overlay: string, component: string): Promise<KubeObject[]> {
  const dir = await mkdtemp(join(tmpdir(), 'nexus-kustomize-'));
  try {
    await writeFile(join(dir, 'kustomization.yaml'), [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      // As an overlay does: the component's own objects take the namespace from it.
      'namespace: nexus',
      `resources: [${relative(dir, join(KUBERNETES_DIR, overlay))}]`,
      `components: [${relative(dir, join(KUBERNETES_DIR, component))}]`,
      '',
    ].join('\n'));
    return parseObjects(await kustomize(dir, ['--load-restrictor', 'LoadRestrictionsNone']));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A container with what the tests read of it. */
export interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: Json }>;
  envFrom?: Array<{ configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: Json;
  readinessProbe?: Json;
  startupProbe?: Json;
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: Json;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

/** The workloads (Deployments) and their pod templates. */
export const workloads = (objects: KubeObject[]) => objects.filter((object) => object.kind === 'Deployment');

export function containersOf(workload: KubeObject): Container[] {
  const pod = workload.spec.template.spec;
  return [...(pod.initContainers ?? []), ...pod.containers];
}

export function named(objects: KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map((object) => `${object.kind}/${object.metadata.name}`).join(', ')}`);
  return found;
}

/** The value of `--flag=value` (or `--flag value`) in a container's args. */
export function flagOf(container: Container, flag: string): string | undefined {
  const args = container.args ?? [];
  for (const [index, arg] of args.entries()) {
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
    if (arg === flag) return args[index + 1];
  }
  return undefined;
}

/** The port number of `host:port`. */
export const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

/** Whether `selector` (matchLabels) selects an object labelled `labels`. */
export const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  Object.entries(selector ?? {}).every(([key, value]) => labels?.[key] === value);
