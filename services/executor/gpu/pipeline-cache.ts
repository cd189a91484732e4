/**
 * Compute pipelines built from the WGSL files under shaders/, cached per device.
 *
 * The cache key holds only what changes the compiled code: the shader file and its preludes,
 * its type aliases (f32 / f16 / i32), the trip counts of its unrolled blocks and its override
 * constants (workgroup sizes included). Shapes travel in uniforms, so one pipeline serves every
 * shape. Set NEXUS_DUMP_WGSL=1 to print the assembled WGSL (and constants) of each pipeline as
 * it is built.
 *
 * Assembling a module: every `enable …;` line of the preludes and the shader moves to the top
 * (plus `enable f16;` when an alias is f16), then one `alias NAME = type;` per type alias, then
 * the preludes, then the shader. Inside any of them,
 *
 *     //#for r in ROWS
 *     var acc_{r} = vec4<f32>();
 *     //#end
 *
 * repeats the lines between the markers ROWS times (ROWS from the variant's `unroll`), with
 * `{r}` replaced by 0, 1, … (and `const ROWS: u32` declared) — explicit unrolling, which software GPUs (lavapipe) need to keep
 * register blocks out of memory; WGSL loops over arrays run about half as fast there.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { failedPrecondition } from '../../domain/errors.ts';
import type { BindingKind, KernelVariant } from '../kernels/index.ts';

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

const sortedEntries = (record: Readonly<Record<string, number | string>> | undefined) =>
  Object.entries(record ?? {}).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));

/**
 * "matmul/gemm_simd.wgsl+conv/fetch_im2col.wgsl<T=f32>[ROWS=32]{ACT=1}": the cache key, also used
 * as the pipeline's label.
 */
export function pipelineKey(variant: Pick<KernelVariant, 'shader' | 'constants' | 'preludes' | 'types' | 'unroll'>): string {
  const preludes = (variant.preludes ?? []).map((file) => `+${file}`).join('');
  const types = sortedEntries(variant.types).map(([name, type]) => `${name}=${type}`).join(',');
  const unroll = sortedEntries(variant.unroll).map(([name, count]) => `${name}=${count}`).join(',');
  const constants = sortedEntries(variant.constants).map(([name, value]) => `${name}=${value}`).join(',');
  return `${variant.shader}${preludes}${types ? `<${types}>` : ''}${unroll ? `[${unroll}]` : ''}{${constants}}`;
}

/**
 * Expands `//#for NAME in COUNT` … `//#end` blocks (nesting allowed). Throws when a count is
 * not given or a block is not closed.
 */
export function expandUnrolled(source: string, counts: Readonly<Record<string, number>>, file = 'shader'): string {
  const lines = source.split('\n');
  let position = 0;
  const expand = (bindings: ReadonlyArray<[string, number]>, until: boolean): string[] => {
    const out: string[] = [];
    while (position < lines.length) {
      const line = lines[position++];
      const start = /^\s*\/\/#for\s+(\w+)\s+in\s+(\w+)\s*$/.exec(line);
      if (start) {
        const [, name, countName] = start;
        const count = counts[countName];
        if (count === undefined) throw failedPrecondition(`${file}: unroll count '${countName}' is not given`);
        const bodyStart = position;
        let body: string[] = [];
        for (let iteration = 0; iteration < Math.max(count, 1); iteration++) {
          position = bodyStart;
          const expanded = expand([...bindings, [name, iteration]], true);
          if (iteration < count) body = body.concat(expanded);
        }
        out.push(...body);
        continue;
      }
      if (/^\s*\/\/#end\s*$/.test(line)) {
        if (!until) throw failedPrecondition(`${file}:${position}: //#end without //#for`);
        return out;
      }
      let text = line;
      for (const [name, value] of bindings) text = text.replaceAll(`{${name}}`, String(value));
      out.push(text);
    }
    if (until) throw failedPrecondition(`${file}: //#for block is not closed`);
    return out;
  };
  return expand([], false).join('\n');
}

/** The WGSL module text of a variant (see the file comment). */
export function assembleShader(variant: Pick<KernelVariant, 'shader' | 'preludes' | 'types' | 'unroll'>): string {
  const enables = new Set<string>();
  const types = sortedEntries(variant.types);
  if (types.some(([, type]) => type === 'f16')) enables.add('enable f16;');
  const bodies = [...(variant.preludes ?? []), variant.shader].map((file) => {
    const source = expandUnrolled(shaderSource(file), variant.unroll ?? {}, file);
    return source.split('\n').filter((line) => {
      const enable = /^\s*enable\s+[\w\s,]+;\s*$/.exec(line);
      if (enable) enables.add(line.trim());
      return !enable;
    }).join('\n');
  });
  const aliases = types.map(([name, type]) => `alias ${name} = ${type};`);
  // Unroll counts are also visible to the code as constants.
  const counts = sortedEntries(variant.unroll).map(([name, count]) => `const ${name}: u32 = ${count}u;`);
  return [...enables, ...aliases, ...counts, ...bodies].join('\n');
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
  private misses = 0;

  constructor(device: GPUDevice, options: { dumpWgsl?: boolean } = {}) {
    this.device = device;
    this.dumpWgsl = options.dumpWgsl ?? process.env.NEXUS_DUMP_WGSL === '1';
  }

  /** Number of distinct pipelines built so far. */
  get size(): number {
    return this.pipelines.size;
  }

  /** Builds started since the cache was made (cache misses, failed builds included). */
  get builds(): number {
    return this.misses;
  }

  /**
   * The pipeline for `variant`, built on first request. Concurrent requests for the same key
   * share one build. A shader that fails to compile rejects with FAILED_PRECONDITION naming it.
   */
  get(variant: KernelVariant): Promise<CachedPipeline> {
    const key = pipelineKey(variant);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      this.misses += 1;
      pipeline = this.build(key, variant);
      // A failed build is not cached: the next request gets a fresh attempt and a fresh error.
      pipeline.catch(() => this.pipelines.delete(key));
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private async build(label: string, variant: KernelVariant): Promise<CachedPipeline> {
    const code = assembleShader(variant);
    if (this.dumpWgsl) {
      console.error(`// ---- NEXUS_DUMP_WGSL: ${label}\n${code}`);
    }
    let module = this.modules.get(code);
    if (!module) {
      module = this.device.createShaderModule({ label, code });
      this.modules.set(code, module);
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
      const messages = info.messages.map((message) => `${label}:${message.lineNum}:${message.linePos} ${message.type}: ${message.message}`);
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
