/**
 * Rendered objects against the Kubernetes API's schemas: each one through its kubernetes-models
 * class (the API's OpenAPI schemas compiled: types, formats, required fields), and every object
 * of a rendering as a TypeScript literal that must satisfy its model's interface, which also
 * refuses fields the API does not have (a misspelt key is silently dropped by a cluster).
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import ValidationError from '@kubernetes-models/validate/runtime/validation_error';
import { REPO_ROOT } from '../integration/harness.ts';
import type { KubeObject } from './kubernetes-manifests.ts';

/** A model's class: made from the object, it validates it (`never`: each takes its own kind). */
type ModelClass = new (data: never) => { validate(): void };

/** Each kind we render, by apiVersion/kind: its model, and where its TypeScript interface is. */
const MODELS: Record<string, { model: ModelClass; module: string }> = {
  'v1/Namespace': { model: Namespace, module: 'kubernetes-models/v1/Namespace' },
  'v1/ServiceAccount': { model: ServiceAccount, module: 'kubernetes-models/v1/ServiceAccount' },
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1/ConfigMap' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1/Service' },
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment' },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, module: 'kubernetes-models/policy/v1/PodDisruptionBudget' },
  'autoscaling/v2/HorizontalPodAutoscaler': { model: HorizontalPodAutoscaler, module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler' },
  'networking.k8s.io/v1/NetworkPolicy': { model: NetworkPolicy, module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy' },
  'monitoring.coreos.com/v1/ServiceMonitor': { model: ServiceMonitor, module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor' },
  'keda.sh/v1alpha1/ScaledObject': { model: ScaledObject, module: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject' },
};

const typeOf = (object: KubeObject) => `${object.apiVersion}/${object.kind}`;

/** Problems the models' validators find, one line per object ("Deployment/nexus-router: data/spec/... must be integer"). */
export function schemaProblems(objects: KubeObject[]): string[] {
  const problems: string[] = [];
  for (const object of objects) {
    const entry = MODELS[typeOf(object)];
    if (!entry) {
      problems.push(`${typeOf(object)} ${object.metadata.name}: no schema known for this kind`);
      continue;
    }
    try {
      new entry.model(object as never).validate();
    } catch (error) {
      // A schema's refusal is a finding; anything else is a bug in this test.
      if (!(error instanceof ValidationError)) throw error;
      problems.push(`${object.kind}/${object.metadata.name}: ${error.message}`);
    }
  }
  return problems;
}

/**
 * The TypeScript compiler's complaints about every object written as a literal that `satisfies`
 * its model's interface (excess property checks find unknown fields). Empty when they all fit.
 */
export async function typeProblems(renderings: Record<string, KubeObject[]>): Promise<string[]> {
  // Under node_modules, so the compiler finds the models' packages from there.
  const dir = join(REPO_ROOT, 'node_modules/.cache/nexus-kubernetes-types');
  await mkdir(dir, { recursive: true });
  const imports = Object.values(MODELS).map(({ module }, index) => `import type { I${module.split('/').pop()} as T${index} } from '${module}';`);
  const typeNames = new Map(Object.keys(MODELS).map((key, index) => [key, `T${index}`]));
  const lines = [...imports, ''];
  for (const [name, objects] of Object.entries(renderings)) {
    for (const object of objects) {
      const typeName = typeNames.get(typeOf(object));
      if (!typeName) continue; // schemaProblems names it
      lines.push(`// ${name}: ${object.kind}/${object.metadata.name}`, `export const object${lines.length} = ${JSON.stringify(object)} satisfies ${typeName};`, '');
    }
  }
  const file = join(dir, 'manifests.ts');
  await writeFile(file, lines.join('\n'));
  try {
    await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--skipLibCheck',
      '--target', 'es2022', '--module', 'preserve', '--moduleResolution', 'bundler', '--types', 'node', file], { maxBuffer: 16 * 1024 * 1024 });
    return [];
  } catch (error) {
    const output = (error as { stdout?: string }).stdout ?? String(error);
    // Each complaint with the object it is about (the comment line above the literal).
    return output.split('\n').filter((line) => line.includes('error TS')).map((line) => {
      const at = /manifests\.ts\((\d+),/.exec(line);
      const about = at ? lines[Number(at[1]) - 2] : '';
      return `${about} ${line.replace(/^.*error /, 'error ')}`;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
