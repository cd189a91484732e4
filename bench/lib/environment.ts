/**
 * The machine a bench ran on, as `--json` records it beside the figures: the adapter Dawn
 * offers (what the executor and onnxruntime's WebGPU provider run on), its driver, the CPU, the
 * versions of Node, Dawn (npm `webgpu`) and onnxruntime-node, the git commit, and the Vulkan
 * drivers installed.
 *
 *   node bench/lib/environment.ts [--require-gpu]
 *
 * prints it; with --require-gpu it exits 1, saying why, unless the adapter is a hardware GPU.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { create, globals } from 'webgpu';

const ROOT = resolve(import.meta.dirname, '../..');
/** Where Vulkan loaders look for drivers (NVIDIA's container toolkit uses the last one). */
export const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/nvidia/share/vulkan/icd.d'];

export interface Environment {
  adapter: { vendor: string; architecture: string; device: string; description: string; software: boolean } | { error: string };
  /** The driver part of the adapter's description ("Mesa 25.0.7 ...", "NVIDIA 550.54.15"). */
  driver: string;
  cpu: { model: string; cores: number };
  memoryGiB: number;
  kernel: string;
  versions: { node: string; dawn: string; onnxruntime: string };
  git: { commit: string; dirty: boolean };
  vulkanDrivers: string[];
  date: string;
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** Vulkan driver manifests (ICD files) installed, by file name; VK_DRIVER_FILES / VK_ICD_FILENAMES first. */
export function vulkanDrivers(env: NodeJS.ProcessEnv = process.env): string[] {
  const named = (env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES ?? '').split(':').filter(Boolean);
  const found = ICD_DIRS.filter((dir) => existsSync(dir)).flatMap((dir) => readdirSync(dir).filter((file) => file.endsWith('.json')).map((file) => join(dir, file)));
  return [...named, ...found];
}

/** lavapipe, SwiftShader and WARP run on the CPU (as services/executor/gpu/device.ts tells them). */
function isSoftware(info: GPUAdapterInfo): boolean {
  const names = `${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true || /software|llvmpipe|lavapipe|swiftshader|microsoft basic render/.test(names);
}

async function describeAdapter(): Promise<Environment['adapter']> {
  Object.assign(globalThis, globals);
  try {
    const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return { error: 'Dawn found no WebGPU adapter (no Vulkan driver the loader could open)' };
    const { vendor, architecture, device, description } = adapter.info;
    return { vendor, architecture, device, description, software: isSoftware(adapter.info) };
  } catch (error) {
    return { error: `Dawn could not list adapters: ${(error as Error).message}` };
  }
}

export async function describeEnvironment(): Promise<Environment> {
  const adapter = await describeAdapter();
  const description = 'description' in adapter ? adapter.description : '';
  return {
    adapter,
    driver: description.includes(':') ? description.slice(description.indexOf(':') + 1).trim() : description,
    cpu: { model: cpus()[0]?.model ?? 'unknown', cores: cpus().length },
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    kernel: release(),
    versions: { node: process.versions.node, dawn: `npm webgpu ${packageVersion('webgpu')}`, onnxruntime: packageVersion('onnxruntime-node') },
    // NEXUS_GIT_COMMIT names the commit where the tree is no clone (an archive, a copy).
    git: process.env.NEXUS_GIT_COMMIT
      ? { commit: process.env.NEXUS_GIT_COMMIT, dirty: false }
      : { commit: git(['rev-parse', 'HEAD']) || 'unknown', dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '' },
    vulkanDrivers: vulkanDrivers(),
    date: new Date().toISOString(),
  };
}

/** One line per fact, for the top of a bench run. */
export function environmentLines(environment: Environment): string[] {
  const { adapter } = environment;
  return [
    `adapter: ${'error' in adapter ? adapter.error : `${adapter.description} (vendor ${adapter.vendor}, ${adapter.software ? 'software' : 'hardware'})`}`,
    `driver: ${environment.driver || 'unknown'}`,
    `cpu: ${environment.cpu.model}, ${environment.cpu.cores} cores, ${environment.memoryGiB} GiB`,
    `versions: node ${environment.versions.node}, dawn (${environment.versions.dawn}), onnxruntime-node ${environment.versions.onnxruntime}`,
    `git: ${environment.git.commit}${environment.git.dirty ? ' (uncommitted changes)' : ''}`,
    `vulkan drivers: ${environment.vulkanDrivers.join(', ') || 'none'}`,
  ];
}

if (import.meta.main) {
  const environment = await describeEnvironment();
  for (const line of environmentLines(environment)) console.log(line);
  if (process.argv.includes('--require-gpu')) {
    const { adapter } = environment;
    if ('error' in adapter) {
      console.error(`no GPU: ${adapter.error}`);
      process.exit(1);
    }
    if (adapter.software) {
      console.error(`no GPU: Dawn offers ${adapter.description}, a software adapter; the NVIDIA Vulkan driver is not the one the loader found`);
      process.exit(1);
    }
  }
  process.exit(0);
}
