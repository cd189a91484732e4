/**
 * What operator specs are assembled from: output-type rules, the storage type of an input or
 * output, constant inputs read at load, the plain input -> output bindings and the alias
 * operator (a new shape over the same buffer). One copy each, shared by every family.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { kindOf, numberView, storageOf, type StorageType } from '../tensor/index.ts';
import { invalidNode, unsupported } from './attributes.ts';
import type { BindingRef, DeviceOperator, GpuTraits, LoadContext, NodeInput, TypeContext } from './contract.ts';
import { ROW_KERNEL_MAX_LENGTH } from '../kernels/index.ts';

/** Output type rule: output 0 has input 0's datatype (FP32 when it is unknown). */
export const sameAsInput = ({ inputTypes }: TypeContext): Datatype[] => [inputTypes[0] ?? 'FP32'];

/** Output type rule: one BOOL output. */
export const boolOutput = (): Datatype[] => ['BOOL'];

/** The storage type of input `index`; FAILED_PRECONDITION when the input has no type. */
export function inputStorage(context: LoadContext, index: number): StorageType {
  const datatype = context.inputs[index]?.datatype;
  if (!datatype) throw invalidNode(context.node, `input ${index} has no type`);
  return storageOf(datatype, context.precision);
}

/** The storage type of output `index` (default 0). */
export function outputStorage(context: LoadContext, index = 0): StorageType {
  return storageOf(context.outputTypes[index], context.precision);
}

/** Input 0's storage type for operators that compute on floats only; FAILED_PRECONDITION otherwise. */
export function floatStorage(context: LoadContext): StorageType {
  const datatype = context.inputs[0]?.datatype;
  if (!datatype || kindOf(datatype) !== 'float') throw unsupported(context.node, `${datatype ?? 'untyped'} input (floats only)`);
  return storageOf(datatype, context.precision);
}

/** A constant input's values as f32, or FAILED_PRECONDITION when it is not known at load. */
export function constantFloats(context: LoadContext, index: number, what: string): { values: Float32Array; shape: number[] } {
  const tensor = context.inputs[index]?.constant;
  if (!tensor) throw unsupported(context.node, `${what} computed at run time (it must be an initializer or a constant)`);
  return { values: Float32Array.from(numberView(tensor)), shape: [...tensor.shape] };
}

/** An FP32 host tensor over `values`. */
export const fp32 = (shape: number[], values: Float32Array): HostTensor => ({ datatype: 'FP32', shape, data: values });

/** Bindings `inputs` inputs then `outputs` outputs (default 1), in order. */
export const io = (inputs: number, outputs = 1): BindingRef[] => [
  ...Array.from({ length: inputs }, (_, input) => ({ input })), ...Array.from({ length: outputs }, (_, output) => ({ output })),
];

/** An operator whose output 0 is input 0's buffer under the shape `shapeOf` computes. */
export function alias(shapeOf: (inputs: ReadonlyArray<NodeInput | undefined>) => number[]): DeviceOperator {
  return { kind: 'alias', variants: [], plan: (inputs) => ({ outputShapes: [shapeOf(inputs)], dispatches: [] }) };
}

/**
 * The longest row the row kernels (Softmax, LayerNormalization: one invocation per row) take.
 * The simd GEMM is chosen exactly for GPUs that are a CPU's SIMD units (lavapipe), where
 * barriers and workgroup memory are slow loops over the lanes, so it selects the longer limit.
 */
export function rowKernelMaxLength(traits: GpuTraits): number {
  return traits.gemmAlgorithm === 'simd' ? ROW_KERNEL_MAX_LENGTH.cpuSimd : ROW_KERNEL_MAX_LENGTH.gpu;
}
