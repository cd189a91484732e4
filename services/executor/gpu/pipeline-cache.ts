/**
 * Compute pipelines built from the WGSL files under shaders/, cached per device.
 *
 * The cache key holds only what changes the compiled code: the shader file and its override
 * constants (workgroup sizes included). Shapes travel in uniforms, so one pipeline serves every
 * shape. Set NEXUS_DUMP_WGSL=1 to print the WGSL (and constants) of each pipeline as it is built.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { failedPrecondition } from '../../rpc/errors.ts';
import type { BindingKind, KernelVariant } from '../kernels/kernel.ts';

/** shaders/ at the repository root (this file is services/executor/gpu/pipeline-cache.ts). */
export const SHADER_ROOT = resolve(import.meta.dirname, '../../../shaders');

/** A pipeline and the layout its bind groups must use. */
export interface CachedPipeline {
  readonly pipeline: GPUComputePipeline;
  readonly bindGroupLayout: GPUBindGroupLayout;
  readonly label: string;
}

/** The WGSL source of a shader file under shaders/ (read once per process). */
const sourceByFile = new Map<string, string>();
export function shaderSource(file: string): string {
  let source = sourceByFile.get(file);
  if (source === undefined) {
    try {
      source = readFileSync(resolve(SHADER_ROOT, file), 'utf8');
    } catch (error) {
      throw failedPrecondition(`shader '${file}' not found under ${SHADER_ROOT}: ${(error as Error).message}`);
    }
    sourceByFile.set(file, source);
  }
  return source;
}

/** "matmul/matmul.wgsl{HAS_BIAS=1,TRANS_A=0,TRANS_B=1}": the cache key, also used as the label. */
export function pipelineKey(variant: Pick<KernelVariant, 'shader' | 'constants'>): string {
  const constants = Object.entries(variant.constants)
    .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`);
  return `${variant.shader}{${constants.join(',')}}`;
}

const BINDING_TYPES: Record<BindingKind, GPUBufferBindingType> = {
  'read-only-storage': 'read-only-storage',
  storage: 'storage',
  uniform: 'uniform',
};

export class PipelineCache {
  private readonly device: GPUDevice;
  private readonly dumpWgsl: boolean;
  private readonly pipelines = new Map<string, Promise<CachedPipeline>>();
  private readonly modules = new Map<string, GPUShaderModule>();

  constructor(device: GPUDevice, options: { dumpWgsl?: boolean } = {}) {
    this.device = device;
    this.dumpWgsl = options.dumpWgsl ?? process.env.NEXUS_DUMP_WGSL === '1';
  }

  /** Number of distinct pipelines built so far. */
  get size(): number {
    return this.pipelines.size;
  }

  /**
   * The pipeline for `variant`, built on first request. Concurrent requests for the same key
   * share one build. A shader that fails to compile rejects with FAILED_PRECONDITION naming it.
   */
  get(variant: KernelVariant): Promise<CachedPipeline> {
    const key = pipelineKey(variant);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.build(key, variant);
      // A failed build is not cached: the next request gets a fresh attempt and a fresh error.
      pipeline.catch(() => this.pipelines.delete(key));
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private async build(label: string, variant: KernelVariant): Promise<CachedPipeline> {
    const code = shaderSource(variant.shader);
    if (this.dumpWgsl) {
      console.error(`// ---- NEXUS_DUMP_WGSL: ${label}\n${code}`);
    }
    let module = this.modules.get(variant.shader);
    if (!module) {
      module = this.device.createShaderModule({ label: variant.shader, code });
      this.modules.set(variant.shader, module);
    }
    const bindGroupLayout = this.device.createBindGroupLayout({
      label,
      entries: variant.bindings.map((kind, binding) => ({
        binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: BINDING_TYPES[kind] },
      })),
    });
    // createComputePipelineAsync rejects (rather than raising an uncaptured error) when the
    // shader does not compile or does not match the layout; the module's messages say why.
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await this.device.createComputePipelineAsync({
        label,
        layout: this.device.createPipelineLayout({ label, bindGroupLayouts: [bindGroupLayout] }),
        compute: { module, entryPoint: 'main', constants: { ...variant.constants } },
      });
    } catch (error) {
      const info = await module.getCompilationInfo();
      const messages = info.messages.map((message) => `${variant.shader}:${message.lineNum}:${message.linePos} ${message.type}: ${message.message}`);
      throw failedPrecondition(`pipeline ${label} failed to build: ${[(error as Error).message, ...messages].join('\n')}`);
    }
    return { pipeline, bindGroupLayout, label };
  }
}

const cacheByDevice = new WeakMap<GPUDevice, PipelineCache>();

/** The pipeline cache shared by everything that runs on `device`. */
export function pipelineCacheFor(device: GPUDevice): PipelineCache {
  let cache = cacheByDevice.get(device);
  if (!cache) {
    cache = new PipelineCache(device);
    cacheByDevice.set(device, cache);
  }
  return cache;
}
