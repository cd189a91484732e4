/**
 * Choosing the adapter an executor runs on: dawn.node's adapter list read from its refusal, an
 * index pinned through the name, --gpus; on fake lists of several GPUs, and on the adapters this
 * machine has (lavapipe alone, in CI).
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/index.ts';
import { parseAdapterList, pinAdapter, selectAdapters, type AdapterEntry } from '../../../services/executor/gpu/adapter-selection.ts';
import { listAdapters, openGpu } from '../../../services/executor/gpu/index.ts';

/** What dawn.node answers to an adapter name it cannot find, on an NVIDIA machine with Mesa installed. */
const EIGHT_WAY = `no suitable backends found
Available adapters:
 * backend: 'vulkan', name: 'NVIDIA H200 NVL'
 * backend: 'vulkan', name: 'NVIDIA L4'
 * backend: 'vulkan', name: 'NVIDIA H200'
 * backend: 'vulkan', name: 'NVIDIA H200'
 * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'`;

/** The error `run` throws (undefined when it throws none). */
function refusal(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

const adapters = (...names: string[]): AdapterEntry[] => parseAdapterList(`Available adapters:\n${names.map((name) => ` * backend: 'vulkan', name: '${name}'`).join('\n')}`);

describe('parseAdapterList', () => {
  it('reads every adapter in dawn.node\'s order, telling software ones apart', () => {
    expect(parseAdapterList(EIGHT_WAY)).toEqual([
      { index: 0, backend: 'vulkan', name: 'NVIDIA H200 NVL', software: false },
      { index: 1, backend: 'vulkan', name: 'NVIDIA L4', software: false },
      { index: 2, backend: 'vulkan', name: 'NVIDIA H200', software: false },
      { index: 3, backend: 'vulkan', name: 'NVIDIA H200', software: false },
      { index: 4, backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)', software: true },
    ]);
  });

  it('keeps quotes inside a name, and finds nothing in an answer without the list', () => {
    expect(adapters("AMD Radeon 'Pro'")[0].name).toBe("AMD Radeon 'Pro'");
    expect(parseAdapterList('unrecognised backend \'foo\'')).toEqual([]);
  });
});

describe('pinAdapter', () => {
  const listed = parseAdapterList(EIGHT_WAY);

  it('pins an adapter by its name when no adapter before it has a name containing it', () => {
    expect(pinAdapter(listed, 0)).toEqual({ index: 0, name: 'NVIDIA H200 NVL', match: 'NVIDIA H200 NVL' });
    expect(pinAdapter(listed, 1).match).toBe('NVIDIA L4');
    expect(pinAdapter(listed, 4).match).toBe('llvmpipe (LLVM 15.0.6, 256 bits)');
  });

  it('refuses an adapter Dawn would confuse with an earlier one, saying how to give it its own GPU', () => {
    // 'NVIDIA H200' is inside 'NVIDIA H200 NVL' (adapter 0), and adapter 3 is adapter 2's twin.
    for (const index of [2, 3]) {
      const refused = refusal(() => pinAdapter(listed, index));
      expect(refused).toMatchObject({ code: ErrorCode.FAILED_PRECONDITION });
      expect((refused as Error).message).toMatch(/adapter 0 \('NVIDIA H200 NVL'\) comes first and its name contains 'NVIDIA H200'.*nvidia.com\/gpu: 1/);
    }
    expect(() => pinAdapter(adapters('NVIDIA L4', 'NVIDIA L4'), 1)).toThrow(/adapter 0 \('NVIDIA L4'\) comes first/);
  });

  it('refuses an index that is not there, listing the adapters', () => {
    expect(() => pinAdapter(listed, 5)).toThrow(/--adapter 5: there is no adapter 5; the adapters are 0: NVIDIA H200 NVL; 1: NVIDIA L4;/);
    expect(() => pinAdapter([], 0)).toThrow(/the adapters are none/);
  });
});

describe('selectAdapters (--gpus)', () => {
  const listed = parseAdapterList(EIGHT_WAY);

  it('all: every hardware adapter, or the software one on a machine without a GPU', () => {
    expect(selectAdapters('all', listed)).toEqual([0, 1, 2, 3]);
    expect(selectAdapters(' all ', adapters('llvmpipe (LLVM 15.0.6, 256 bits)'))).toEqual([0]);
    expect(() => selectAdapters('all', [])).toThrow(/no WebGPU adapter found/);
  });

  it('a list of indices, each once, in the order given', () => {
    expect(selectAdapters('0,2', listed)).toEqual([0, 2]);
    expect(selectAdapters('4, 1', listed)).toEqual([4, 1]);
  });

  it('refuses what is not an index there, naming the flag (INVALID_ARGUMENT)', () => {
    expect(() => selectAdapters('0,9', listed)).toThrow(/--gpus '0,9': there is no adapter 9/);
    expect(() => selectAdapters('1,1', listed)).toThrow(/adapter 1 is named twice/);
    expect(() => selectAdapters('gpu0', listed)).toThrow(/expected 'all' or adapter indices such as 0,2, got 'gpu0'/);
    expect(() => selectAdapters('', listed)).toThrow(/got ''/);
    expect(refusal(() => selectAdapters('-1', listed))).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining("got '-1'") });
  });
});

describe('the adapters of this machine', () => {
  it('lists them from dawn.node and opens one by its index, saying which', async () => {
    const here = await listAdapters();
    expect(here.length).toBeGreaterThanOrEqual(1);
    expect(here.map((adapter) => adapter.index)).toEqual(here.map((_, index) => index));
    const last = here.length - 1;
    const gpu = await openGpu({ adapterIndex: last });
    try {
      expect(gpu.adapterIndex).toBe(last);
      expect(gpu.description).toMatch(new RegExp(`\\[adapter ${last}\\]$`));
      // The device opened is the adapter listed at that index (its name, before the first ':' or '(').
      const listedName = here[last].name.split(/[(:]/)[0].trim();
      expect(gpu.description).toContain(listedName);
    } finally {
      gpu.destroy();
    }
    await expect(openGpu({ adapterIndex: here.length })).rejects.toMatchObject({
      code: ErrorCode.FAILED_PRECONDITION, message: expect.stringContaining(`there is no adapter ${here.length}`),
    });
  });
});
