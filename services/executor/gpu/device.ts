/**
 * Opens the WebGPU device the executor computes on (Dawn's Node bindings, npm `webgpu`).
 *
 * The device gets the adapter's own limits rather than the WebGPU defaults (which cap workgroup
 * memory at 16 KiB and invocations at 256), plus shader-f16 and timestamp-query when the adapter
 * has them.
 */
import { create, globals } from 'webgpu';
import { failedPrecondition } from '../../rpc/errors.ts';

/** A ready device and what the executor needs to know about it. */
export interface GpuContext {
  readonly device: GPUDevice;
  /** Human-readable adapter name, e.g. "mesa llvmpipe (software)". */
  readonly description: string;
  /** True when the device has timestamp-query, so runs can report GPU time. */
  readonly hasTimestamps: boolean;
  /** True when the device has shader-f16. */
  readonly hasF16: boolean;
  /** True when the device has subgroups. */
  readonly hasSubgroups: boolean;
  /** The adapter's smallest subgroup size (4 when it does not say). */
  readonly subgroupMinSize: number;
  /**
   * True for a CPU implementation (lavapipe, SwiftShader, WARP): the kernels then pick the
   * variants tuned for SIMD lanes instead of GPU workgroup tiling.
   */
  readonly isSoftware: boolean;
  /** Destroys the device; safe to call more than once. */
  destroy(): void;
}

export interface OpenGpuOptions {
  /**
   * Substring of the adapter name to insist on (Dawn's `adapter=` flag), e.g. "NVIDIA" or
   * "llvmpipe". Default: Dawn's first choice for `powerPreference`.
   */
  adapter?: string;
  /** Default: "high-performance". */
  powerPreference?: GPUPowerPreference;
  /**
   * Dawn toggles to enable (instance, adapter and device stages). Default:
   * `vulkan_enable_f16_on_nvidia` (Dawn hides shader-f16 on NVIDIA + Vulkan without it).
   */
  enableToggles?: string[];
}

const DEFAULT_TOGGLES = ['vulkan_enable_f16_on_nvidia'];

/** Limits copied from the adapter into the device request (the defaults are far lower). */
const ADAPTER_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups'];

let globalsInstalled = false;

/**
 * Every Dawn instance ever opened. An instance that is garbage-collected while its device lives
 * takes the device down with it (hung mapAsync, segfaults), and releasing one has crashed
 * dawn.node before, so instances stay referenced for the life of the process; there is
 * normally one.
 */
const openInstances: GPU[] = [];

/**
 * Opens a WebGPU device with the adapter's own limits.
 *
 * Throws FAILED_PRECONDITION when no adapter is found (on Linux: install a Vulkan driver, e.g.
 * `libvulkan1 mesa-vulkan-drivers` for the CPU fallback, or the NVIDIA Vulkan ICD).
 */
export async function openGpu(options: OpenGpuOptions = {}): Promise<GpuContext> {
  if (!globalsInstalled) {
    // GPUBufferUsage, GPUMapMode, ... as globals, the way browser code expects them.
    Object.assign(globalThis, globals);
    globalsInstalled = true;
  }
  // Every toggle must go in one string: Dawn keeps only the last value of a repeated key.
  const flags = [
    // Full-resolution timestamps instead of 65.536 µs steps.
    'disable-dawn-features=timestamp_quantization',
    `enable-dawn-features=${(options.enableToggles ?? DEFAULT_TOGGLES).join(',')}`,
  ];
  if (options.adapter) flags.push(`adapter=${options.adapter}`);

  const instance = create(flags);
  openInstances.push(instance);
  let adapter: GPUAdapter | null;
  try {
    adapter = await instance.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  } catch (error) {
    throw noAdapter(options, (error as Error).message);
  }
  if (!adapter) throw noAdapter(options);

  const requiredLimits: Record<string, number> = {};
  for (const name of ADAPTER_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = OPTIONAL_FEATURES.filter((feature) => adapter.features.has(feature));
  const description = describeAdapter(adapter.info);
  const device = await adapter.requestDevice({ label: `nexus ${description}`, requiredFeatures, requiredLimits });

  let destroyed = false;
  return {
    device,
    description,
    hasTimestamps: device.features.has('timestamp-query'),
    hasF16: device.features.has('shader-f16'),
    hasSubgroups: device.features.has('subgroups'),
    subgroupMinSize: (adapter.info as GPUAdapterInfo & { subgroupMinSize?: number }).subgroupMinSize ?? 4,
    isSoftware: isSoftwareAdapter(adapter.info),
    destroy() {
      if (destroyed) return;
      destroyed = true;
      device.destroy();
    },
  };
}

function noAdapter(options: OpenGpuOptions, detail?: string) {
  const wanted = options.adapter ? ` matching '${options.adapter}'` : '';
  return failedPrecondition(
    `no WebGPU adapter${wanted} found${detail ? ` (${detail})` : ''}; install a Vulkan driver ` +
    `(Debian/Ubuntu: apt-get install libvulkan1 mesa-vulkan-drivers for the CPU fallback, ` +
    `or the GPU vendor's Vulkan ICD)`,
  );
}

/** lavapipe (llvmpipe), SwiftShader and WARP run compute shaders on the CPU. */
function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  const names = `${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true
    || /software|llvmpipe|lavapipe|swiftshader|microsoft basic render/.test(names);
}

/** "mesa llvmpipe (software)": vendor, the device's name, architecture. */
function describeAdapter(info: GPUAdapterInfo): string {
  // lavapipe's description is "llvmpipe: Mesa 25.0.7 ..."; keep only the name before the colon.
  const name = (info.description || info.device).split(':')[0].trim() || info.device || 'unknown device';
  const vendor = info.vendor && !name.toLowerCase().startsWith(info.vendor.toLowerCase()) ? `${info.vendor} ` : '';
  return `${vendor}${name}${info.architecture ? ` (${info.architecture})` : ''}`;
}
