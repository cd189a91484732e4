/**
 * Test models and processes for the registry tests: small ONNX models, an ONNX model of any size
 * generated as a stream (a big initializer first, the graph's inputs and outputs after it, as
 * exporters write them), and the registry started as its own process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { GraphBuilder, type ModelSignature } from '../../services/onnx/index.ts';
import { NodeProto, OperatorSetIdProto, TensorProto, ValueInfoProto } from '../../services/protocol/generated/onnx/onnx.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

/** A small valid ONNX model; `seed` changes its weights and so its digest. */
export function tinyModel(seed: number): Uint8Array {
  return new GraphBuilder('tiny')
    .input('x', 'FP32', [-1, 2])
    .initializer('w', 'FP32', [2, 2], new Float32Array([seed, 1, 2, 3]))
    .node('MatMul', ['x', 'w'], ['y'])
    .output('y', 'FP32', [-1, 2])
    .toBytes();
}

function varint(value: number): number[] {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return bytes;
}

const lengthDelimited = (field: number, body: Uint8Array) => Buffer.concat([Buffer.from([...varint(field * 8 + 2), ...varint(body.byteLength)]), body]);

/** Bytes per generated chunk. */
const BLOCK_BYTES = 1024 * 1024;

export interface GeneratedModel {
  sizeBytes: number;
  signature: ModelSignature;
  /** The model's bytes, generated afresh on each call; the weights repeat one random 1 MiB block. */
  chunks(): AsyncGenerator<Uint8Array>;
}

/**
 * A MatMul model y = x · w whose FP32 initializer w holds `weightBytes` bytes (a multiple of
 * 4096), written before the graph's inputs and outputs, so its signature can only be read by
 * getting past the weights.
 */
export function hugeOnnxModel(weightBytes: number): GeneratedModel {
  if (weightBytes % 4096 !== 0) throw new Error('weightBytes must be a multiple of 4096');
  const columns = weightBytes / 4096;
  const tensorHead = TensorProto.encode(TensorProto.fromPartial({ dims: [1024, columns], dataType: 1, name: 'w' })).finish();
  const rawHeader = Buffer.from([...varint(9 * 8 + 2), ...varint(weightBytes)]);
  const tensorBytes = tensorHead.byteLength + rawHeader.byteLength + weightBytes;
  const valueInfo = (name: string, dims: Array<{ dimParam?: string; dimValue?: number }>) => ValueInfoProto.encode(ValueInfoProto.fromPartial({
    name, type: { tensorType: { elemType: 1, shape: { dim: dims } } },
  })).finish();
  const node = NodeProto.encode(NodeProto.fromPartial({ input: ['x', 'w'], output: ['y'], opType: 'MatMul' })).finish();
  const graphHead = Buffer.concat([
    lengthDelimited(1, node),
    lengthDelimited(2, Buffer.from('huge')),
    Buffer.from([...varint(5 * 8 + 2), ...varint(tensorBytes)]),
    tensorHead,
    rawHeader,
  ]);
  const graphTail = Buffer.concat([
    lengthDelimited(11, valueInfo('x', [{ dimParam: 'batch' }, { dimValue: 1024 }])),
    lengthDelimited(12, valueInfo('y', [{ dimParam: 'batch' }, { dimValue: columns }])),
  ]);
  const graphBytes = graphHead.byteLength + weightBytes + graphTail.byteLength;
  const modelHead = Buffer.concat([
    Buffer.from([...varint(1 * 8 + 0), ...varint(8)]), // ir_version 8
    lengthDelimited(8, OperatorSetIdProto.encode(OperatorSetIdProto.fromPartial({ domain: '', version: 17 })).finish()),
    Buffer.from([...varint(7 * 8 + 2), ...varint(graphBytes)]),
    graphHead,
  ]);
  const block = randomBytes(BLOCK_BYTES);
  return {
    sizeBytes: modelHead.byteLength + weightBytes + graphTail.byteLength,
    signature: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1024] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, columns] }],
    },
    async *chunks() {
      yield modelHead;
      for (let left = weightBytes; left > 0; left -= BLOCK_BYTES) yield left >= BLOCK_BYTES ? block : block.subarray(0, left);
      yield graphTail;
    },
  };
}

export interface RegistryProcess {
  process: ChildProcess;
  address: string;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** The process's peak resident memory so far (VmHWM), in bytes. */
  peakResidentBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts `services/registry/main.ts` as its own process and waits until it listens. */
export async function startRegistryProcess(args: string[], env: Record<string, string> = {}, cwd = REPO_ROOT): Promise<RegistryProcess> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'services/registry/main.ts'), '--address', '127.0.0.1:0', '--metrics-address', '127.0.0.1:0', ...args], {
    // Insecure unless a test asks otherwise: these tests are about storage, not authentication.
    cwd, env: { ...process.env, NEXUS_INSECURE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let output = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
    output += chunk;
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  const address = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const line = stdout.split('\n').find((candidate) => candidate.includes('"listening"'));
      if (line) resolve(JSON.parse(line).address);
    });
    child.once('exit', (code) => reject(new Error(`registry exited with ${code} before listening:\n${stderr}`)));
  });
  return {
    process: child,
    address,
    output: () => output,
    async peakResidentBytes() {
      const { readFile } = await import('node:fs/promises');
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    }),
  };
}
