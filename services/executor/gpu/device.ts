/**
 * Opens the WebGPU device the executor computes on (Dawn's Node bindings, npm `webgpu`).
 *
 * The device gets the adapter's own limits rather than the WebGPU defaults (which cap workgroup
 * memory at 16 KiB and invocations at 256), plus shader-f16 and timestamp-query when the adapter
 * has them.
 */
import { create, globals } from 'webgpu';
import { failedPrecondition } from '../../domain/errors.ts';
import { parseAdapterList, pinAdapter, SOFTWARE_ADAPTER, type AdapterEntry } from './adapter-selection.ts';

/** A ready device and what the executor needs to know about it. */
export interface GpuContext {
  readonly device: GPUDevice;
  /** Human-readable adapter name, e.g. "mesa llvmpipe (software)", with "[adapter N]" when pinned by index. */
  readonly description: string;
  /** The adapter's index in dawn.node's order when it was pinned by one (--adapter). */
  readonly adapterIndex?: number;
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
  /**
   * The adapter's index in dawn.node's order (listAdapters; --adapter), pinned through its name
   * (adapter-selection.ts). Instead of `adapter`.
   */
  adapterIndex?: number;
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

/** How long a burst of Dawn's event polling runs back to back before each poll first sleeps. */
const EAGER_POLLING_MS = 0.5;
/** The sleep before each later poll: the most a finished batch waits to be noticed. */
const POLL_SLEEP_MS = 0.1;
/**
 * How long, in multiples of a wait's expected time, its polls sleep instead of spinning. Past
 * that (work that took far longer than last time) the wait spins and sleeps as any other.
 */
const QUIET_SPAN = 1.5;
/**
 * Work expected to take less than this keeps the spin: it is over within the spin or soon after,
 * and a sleeping poll overshoots by tens of microseconds (ResNet-style at batch 1, a 0.6 ms pass,
 * was no faster in the kernel bench with its polls asleep).
 */
const QUIET_MIN_MS = 1;
let dawnPollingThrottled = false;
/** Until when Dawn's polls sleep rather than spin (performance.now() time); 0: no work expected. */
let quietUntil = 0;

/**
 * Says that GPU work just submitted is expected to take about `milliseconds` (the last run of the
 * same plan): on a software adapter, Dawn's polls sleep through it instead of spinning on a core
 * the shaders need. Work already expected to end sooner keeps its earlier time. Does
 * nothing for work shorter than QUIET_MIN_MS, or on hardware adapters (their polls are never
 * throttled).
 */
export function expectGpuWork(milliseconds: number): void {
  if (dawnPollingThrottled) quietUntil = quietUntilFor(performance.now(), milliseconds, quietUntil);
}

/**
 * Until when polls sleep once work expected to take `expectedMs` is submitted at `nowMs`, while
 * they were to sleep until `quietUntilMs` (0 for none). All times in milliseconds.
 */
export function quietUntilFor(nowMs: number, expectedMs: number, quietUntilMs: number): number {
  if (!(expectedMs >= QUIET_MIN_MS)) return quietUntilMs;
  const untilMs = nowMs + expectedMs * QUIET_SPAN;
  return quietUntilMs > nowMs ? Math.min(quietUntilMs, untilMs) : untilMs;
}

/**
 * How long a Dawn poll at `nowMs` sleeps before it runs (0: at once), for a wait that began at
 * `waitStartMs` while polls are to sleep until `quietUntilMs` (expectGpuWork; 0 for none): it
 * sleeps until then, spins for EAGER_POLLING_MS from the later of the two, and sleeps
 * POLL_SLEEP_MS before each poll after that. All times in milliseconds.
 */
export function pollSleepMs(nowMs: number, waitStartMs: number, quietUntilMs: number): number {
  const spinStartMs = Math.max(waitStartMs, quietUntilMs);
  if (nowMs < spinStartMs) return Math.min(POLL_SLEEP_MS, spinStartMs - nowMs);
  return nowMs - spinStartMs < EAGER_POLLING_MS ? 0 : POLL_SLEEP_MS;
}

/**
 * dawn.node settles mapAsync, popErrorScope and the other promises by calling the global
 * `setImmediate` with a native callback that runs `instance.ProcessEvents()` and queues itself
 * again while anything is pending: a busy loop on the main thread for as long as the GPU works.
 * On a software adapter the "GPU" is the CPU's cores, and that loop takes one of them from the
 * threads running the shaders (on a 2-core machine a 256×1024×1024 matmul on lavapipe took 30 ms
 * with the loop spinning, 16 ms without). So, on software adapters only, Dawn's polls run back
 * to back for the first EAGER_POLLING_MS of a wait (short batches stay as fast as before), then
 * each one first sleeps POLL_SLEEP_MS. Where the caller knows its work takes well longer than
 * the spin (expectGpuWork, QUIET_MIN_MS), every poll sleeps: on two cores, batches of 1–3 ms (a
 * transformer, a 3-layer MLP at batch 1) finished 10–20% sooner than with the spin at their
 * start or at their expected end, measured interleaved. The sleep blocks the main thread, which
 * has nothing else to do but I/O; between polls the event loop runs as usual, so I/O waits at
 * most that long. (A timer instead would add up to a millisecond to every batch.) Dawn's callbacks are
 * recognized as what they are, anonymous native functions of no parameters made by the addon
 * (unlike promise resolvers, which take one and have no prototype, or bound functions, which
 * are named); every other caller is untouched.
 */
function throttleDawnPolling(): void {
  if (dawnPollingThrottled) return;
  dawnPollingThrottled = true;
  const original = globalThis.setImmediate;
  const sleepCell = new Int32Array(new SharedArrayBuffer(4));
  // Dawn's loop ends with a tick that queues no further tick; the next poll starts a new wait.
  let polling = false;
  let requeued = false;
  let waitStart = 0;
  const tick = (callback: () => void) => {
    requeued = false;
    try {
      callback();
    } finally {
      // Nothing is pending any more: what was expected is over, however soon it ended.
      if (!requeued) {
        polling = false;
        quietUntil = 0;
      }
    }
  };
  const sleepThenTick = (callback: () => void, sleepMs: number) => {
    Atomics.wait(sleepCell, 0, 0, sleepMs);
    tick(callback);
  };
  const throttled = function setImmediate(callback: (...args: unknown[]) => void, ...args: unknown[]) {
    const isDawnPoll = typeof callback === 'function' && callback.name === '' && callback.length === 0 && args.length === 0
      && Object.hasOwn(callback, 'prototype') && Function.prototype.toString.call(callback).includes('[native code]');
    if (!isDawnPoll) return original(callback, ...args);
    requeued = true;
    const now = performance.now();
    if (!polling) {
      polling = true;
      waitStart = now;
    }
    const sleepMs = pollSleepMs(now, waitStart, quietUntil);
    // Dawn polls every few microseconds while it waits: no closure per poll.
    return sleepMs === 0 ? original(tick, callback) : original(sleepThenTick, callback, sleepMs);
  };
  // Keep what hangs off the original (util.promisify's custom implementation).
  for (const key of Reflect.ownKeys(original)) {
    if (typeof key === 'symbol') Object.defineProperty(throttled, key, Object.getOwnPropertyDescriptor(original, key)!);
  }
  globalThis.setImmediate = throttled as typeof globalThis.setImmediate;
}

/** The power preference adapters are enumerated and opened with: one order for listing and opening. */
const DEFAULT_POWER_PREFERENCE: GPUPowerPreference = 'high-performance';

/** An adapter name no device has, so dawn.node answers with the list of every adapter. */
const NO_SUCH_ADAPTER = 'nexus-list-adapters-no-such-device';

/**
 * Every adapter dawn.node can open, in its order for `powerPreference` (the indices --adapter
 * takes): read from its refusal of a name that matches none.
 */
export async function listAdapters(powerPreference: GPUPowerPreference = DEFAULT_POWER_PREFERENCE): Promise<AdapterEntry[]> {
  const instance = create([`adapter=${NO_SUCH_ADAPTER}`]);
  openInstances.push(instance);
  try {
    // Resolves null when there is no adapter at all (no Vulkan driver).
    await instance.requestAdapter({ powerPreference });
    return [];
  } catch (error) {
    return parseAdapterList((error as Error).message ?? String(error));
  }
}

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
  const powerPreference = options.powerPreference ?? DEFAULT_POWER_PREFERENCE;
  const pin = options.adapterIndex === undefined ? undefined : pinAdapter(await listAdapters(powerPreference), options.adapterIndex);
  const adapterName = pin?.match ?? options.adapter;
  if (adapterName) flags.push(`adapter=${adapterName}`);

  const instance = create(flags);
  openInstances.push(instance);
  let adapter: GPUAdapter | null;
  try {
    adapter = await instance.requestAdapter({ powerPreference });
  } catch (error) {
    throw noAdapter(options, (error as Error).message);
  }
  if (!adapter) throw noAdapter(options);

  const requiredLimits: Record<string, number> = {};
  for (const name of ADAPTER_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = OPTIONAL_FEATURES.filter((feature) => adapter.features.has(feature));
  const description = `${describeAdapter(adapter.info)}${pin ? ` [adapter ${pin.index}]` : ''}`;
  const isSoftware = isSoftwareAdapter(adapter.info);
  if (isSoftware) throttleDawnPolling();
  const device = await adapter.requestDevice({ label: `nexus ${description}`, requiredFeatures, requiredLimits });

  let destroyed = false;
  return {
    device,
    description,
    adapterIndex: pin?.index,
    hasTimestamps: device.features.has('timestamp-query'),
    hasF16: device.features.has('shader-f16'),
    hasSubgroups: device.features.has('subgroups'),
    subgroupMinSize: (adapter.info as GPUAdapterInfo & { subgroupMinSize?: number }).subgroupMinSize ?? 4,
    isSoftware,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      device.destroy();
    },
  };
}

function noAdapter(options: OpenGpuOptions, detail?: string) {
  const wanted = options.adapterIndex !== undefined ? ` ${options.adapterIndex}` : options.adapter ? ` matching '${options.adapter}'` : '';
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
    || SOFTWARE_ADAPTER.test(names);
}

/** "mesa llvmpipe (software)": vendor, the device's name, architecture. */
function describeAdapter(info: GPUAdapterInfo): string {
  // lavapipe's description is "llvmpipe: Mesa 25.0.7 ..."; keep only the name before the colon.
  const name = (info.description || info.device).split(':')[0].trim() || info.device || 'unknown device';
  const vendor = info.vendor && !name.toLowerCase().startsWith(info.vendor.toLowerCase()) ? `${info.vendor} ` : '';
  return `${vendor}${name}${info.architecture ? ` (${info.architecture})` : ''}`;
}
