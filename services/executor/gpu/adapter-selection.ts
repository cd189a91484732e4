/**
 * Which WebGPU adapter an executor runs on, pure. dawn.node enumerates the adapters of its
 * backend (Vulkan on Linux) in one order for a given power preference and opens the first whose
 * device name contains the `adapter=` flag's text; it has no flag for an index. So an adapter is
 * pinned by its index in that order (what `--list-adapters` prints) through its name, which
 * works when no adapter before it has a name containing it. The list itself comes from dawn.node's
 * own refusal of a name that matches nothing, which names every adapter (device.ts asks).
 */
import { failedPrecondition, invalidArgument } from '../../domain/errors.ts';

/** One adapter in dawn.node's order. */
export interface AdapterEntry {
  index: number;
  /** 'vulkan', 'metal', 'd3d12', ... */
  backend: string;
  /** The device name Dawn matches `adapter=` against, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  name: string;
  /** A CPU implementation (lavapipe, SwiftShader, WARP). */
  software: boolean;
}

/** lavapipe (llvmpipe), SwiftShader and WARP run compute shaders on the CPU. */
export const SOFTWARE_ADAPTER = /software|llvmpipe|lavapipe|swiftshader|microsoft basic render/i;

/** " * backend: 'vulkan', name: 'NVIDIA H200'": one line of dawn.node's list. */
const LISTED_ADAPTER = /^\s*\*\s*backend:\s*'([^']*)',\s*name:\s*'(.*)'\s*$/;

/**
 * The adapters named in dawn.node's answer to an adapter name it cannot find ("no suitable
 * backends found\nAvailable adapters:\n * backend: 'vulkan', name: '…'"), in its order. An answer
 * without that list (no adapter at all) is an empty list.
 */
export function parseAdapterList(message: string): AdapterEntry[] {
  const at = message.indexOf('Available adapters:');
  if (at < 0) return [];
  const adapters: AdapterEntry[] = [];
  for (const line of message.slice(at).split('\n').slice(1)) {
    const match = LISTED_ADAPTER.exec(line);
    if (!match) continue;
    adapters.push({ index: adapters.length, backend: match[1], name: match[2], software: SOFTWARE_ADAPTER.test(match[2]) });
  }
  return adapters;
}

/** How to open adapter `index`: the text for Dawn's `adapter=` flag. */
export interface AdapterPin {
  index: number;
  name: string;
  /** Passed as `adapter=<match>`; Dawn opens the first adapter whose name contains it. */
  match: string;
}

/**
 * The pin for adapter `index` (--adapter). FAILED_PRECONDITION when there is no such adapter, and
 * when an adapter before it has a name containing its own (two identical GPUs, say): Dawn would
 * open that one instead, so such an executor must be given a machine, container or pod that sees
 * only its GPU.
 */
export function pinAdapter(adapters: readonly AdapterEntry[], index: number): AdapterPin {
  const adapter = adapters[index];
  if (!adapter) {
    const listed = adapters.map((entry) => `${entry.index}: ${entry.name}`).join('; ') || 'none';
    throw failedPrecondition(`--adapter ${index}: there is no adapter ${index}; the adapters are ${listed}`);
  }
  const shadowing = adapters.slice(0, index).find((earlier) => earlier.name.includes(adapter.name));
  if (shadowing) {
    throw failedPrecondition(
      `--adapter ${index}: adapter ${shadowing.index} ('${shadowing.name}') comes first and its name contains '${adapter.name}', ` +
      'and dawn.node opens adapters by name, so it would open that one; give this executor only its GPU to see ' +
      '(Kubernetes: nvidia.com/gpu: 1; a container: NVIDIA_VISIBLE_DEVICES=<n>) and no --adapter',
    );
  }
  return { index, name: adapter.name, match: adapter.name };
}

/**
 * The adapters `--gpus` names: 'all' (every hardware adapter, or the software ones where there is
 * none, so a machine without a GPU still gets one executor) or a comma-separated list of indices
 * ('0,2'), each once. INVALID_ARGUMENT naming the flag and the value otherwise.
 */
export function selectAdapters(value: string, adapters: readonly AdapterEntry[]): number[] {
  const trimmed = value.trim();
  if (trimmed === 'all') {
    const hardware = adapters.filter((adapter) => !adapter.software);
    const chosen = hardware.length > 0 ? hardware : adapters;
    if (chosen.length === 0) throw failedPrecondition('--gpus all: no WebGPU adapter found; install a Vulkan driver (see docs/executor.md)');
    return chosen.map((adapter) => adapter.index);
  }
  const parts = trimmed.split(',').map((part) => part.trim());
  const indices: number[] = [];
  for (const part of parts) {
    if (!/^\d+$/.test(part)) throw invalidArgument(`--gpus '${value}': expected 'all' or adapter indices such as 0,2, got '${part}'`);
    const index = Number(part);
    if (index >= adapters.length) {
      throw invalidArgument(`--gpus '${value}': there is no adapter ${index}; the adapters are ${adapters.map((entry) => `${entry.index}: ${entry.name}`).join('; ') || 'none'}`);
    }
    if (indices.includes(index)) throw invalidArgument(`--gpus '${value}': adapter ${index} is named twice`);
    indices.push(index);
  }
  return indices;
}
