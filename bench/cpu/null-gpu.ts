/**
 * A WebGPU device on Dawn's null backend: the whole WebGPU API (validation, pipelines, buffers,
 * submits, mapping) with no GPU behind it and nothing executed. The executor's host-side work per
 * batch (decode, upload, encode, submit, read back, answer) is then all that runs, on any
 * machine and the same on every run, which is what the instruction-count gate measures.
 * Results are zeros.
 */
import { create, globals } from 'webgpu';
import type { GpuContext } from '../../services/executor/gpu/index.ts';

/** The limits services/executor/gpu/device.ts copies from the adapter. */
const ADAPTER_LIMITS = [
  'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

/** Kept referenced for the life of the process: a collected instance takes its device down. */
const instances: GPU[] = [];

export async function openNullGpu(): Promise<GpuContext> {
  Object.assign(globalThis, globals);
  const instance = create(['backend=null']);
  instances.push(instance);
  const adapter = await instance.requestAdapter();
  if (!adapter) throw new Error('Dawn offered no null-backend adapter');
  const requiredFeatures = (['timestamp-query', 'shader-f16', 'subgroups'] as GPUFeatureName[]).filter((feature) => adapter.features.has(feature));
  // The adapter's own limits, as openGpu asks for them (the WebGPU defaults are far lower).
  const requiredLimits: Record<string, number> = {};
  for (const name of ADAPTER_LIMITS) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ label: 'nexus null backend', requiredFeatures, requiredLimits });
  let destroyed = false;
  return {
    device,
    description: 'Dawn null backend (no GPU)',
    hasTimestamps: device.features.has('timestamp-query'),
    hasF16: device.features.has('shader-f16'),
    // The kernels lavapipe gets (simd GEMM): the null adapter offers only 16 KiB of workgroup
    // memory, less than the tiled GEMM's skinny tile takes. Nothing runs, so the lane count is moot.
    hasSubgroups: device.features.has('subgroups'),
    subgroupMinSize: 8,
    isSoftware: true,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      device.destroy();
    },
  };
}
