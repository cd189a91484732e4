/**
 * The one way to read an operator's parameters, for the CPU evaluation and the GPU planning
 * alike: attributes in the opsets that had them, host-known inputs in the opsets that moved them
 * there (Reshape's shape, Slice's starts, Pad's pads, reduction axes, ...). Both paths hand the
 * node's inputs over as they are; nothing is re-wrapped.
 */
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { ONNX_UNARY } from '../kernels/index.ts';
import { toNumbers } from '../tensor/index.ts';
import { floatAttribute, intsAttribute, stringAttribute, unsupported } from './attributes.ts';
import type { NodeInput } from './contract.ts';

/** Node inputs as far as parameters go: the host value where one is known. */
export type ParameterInputs = ReadonlyArray<{ readonly value?: HostTensor | undefined } | undefined>;

/** Input `index`, which the spec's input count guarantees; throws when it is absent. */
export function required(inputs: ReadonlyArray<NodeInput | undefined>, index: number): NodeInput {
  const input = inputs[index];
  if (!input) throw new Error(`input ${index} is absent`);
  return input;
}

/** The host value of input `index`, or undefined when it is absent or not known on the host. */
export function parameterValue(inputs: ParameterInputs, index: number): HostTensor | undefined {
  return inputs[index]?.value;
}

/** The host value of input `index`; throws when it is not known (the CPU only runs on known values). */
export function requiredValue(context: { readonly node: NodeProto; readonly inputs: ParameterInputs }, index: number): HostTensor {
  const tensor = context.inputs[index]?.value;
  if (!tensor) throw new Error(`input ${index} of '${context.node.name}' has no host value`);
  return tensor;
}

/** Reshape's target: the `shape` attribute (opset < 5) or the second input. */
export function reshapeTarget(node: NodeProto, inputs: ParameterInputs): number[] {
  const attribute = intsAttribute(node, 'shape');
  if (attribute) return attribute;
  const tensor = inputs[1]?.value;
  if (!tensor) throw unsupported(node, 'a shape input that is not known before the GPU runs');
  return toNumbers(tensor);
}

/** Axes from the attribute before opset `attributeUntil`, from input 1 from then on (the attribute as a fallback). */
function axesOf(node: NodeProto, opset: number, inputs: ParameterInputs, attributeUntil: number): number[] | undefined {
  if (opset < attributeUntil) return intsAttribute(node, 'axes');
  const tensor = inputs[1]?.value;
  return tensor ? toNumbers(tensor) : intsAttribute(node, 'axes');
}

/** Squeeze / Unsqueeze axes: the attribute before opset 13, the second input from 13. */
export function squeezeAxes(node: NodeProto, opset: number, inputs: ParameterInputs): number[] | undefined {
  return axesOf(node, opset, inputs, 13);
}

/** Reduce axes: the attribute before opset 18 (13 for ReduceSum), the second input after. */
export function reduceAxes(node: NodeProto, opset: number, inputs: ParameterInputs): number[] | undefined {
  return axesOf(node, opset, inputs, node.opType === 'ReduceSum' ? 13 : 18);
}

/** Split sizes from the attribute (opset < 13) or the second input; undefined: equal parts. */
export function splitOf(node: NodeProto, opset: number, inputs: ParameterInputs): number[] | undefined {
  if (opset < 13) return intsAttribute(node, 'split');
  const tensor = inputs[1]?.value;
  return tensor ? toNumbers(tensor) : undefined;
}

/** Slice parameters: attributes before opset 10, inputs 1..4 from 10. */
export function sliceParameters(node: NodeProto, opset: number, inputs: ParameterInputs) {
  if (opset < 10) {
    return { starts: intsAttribute(node, 'starts') ?? [], ends: intsAttribute(node, 'ends') ?? [], axes: intsAttribute(node, 'axes'), steps: undefined };
  }
  const ints = (index: number) => {
    const tensor = inputs[index]?.value;
    return tensor ? toNumbers(tensor) : undefined;
  };
  return { starts: ints(1) ?? [], ends: ints(2) ?? [], axes: ints(3), steps: ints(4) };
}

/** Pad parameters: attributes before opset 11, inputs from 11 (axes from 18). The fill value defaults to 0. */
export function padParameters(node: NodeProto, opset: number, inputs: ParameterInputs) {
  if (opset < 11) {
    return { pads: intsAttribute(node, 'pads') ?? [], value: floatAttribute(node, 'value', 0), axes: undefined };
  }
  const pads = inputs[1]?.value;
  if (!pads) throw unsupported(node, 'pads that are not known before the GPU runs');
  const constant = inputs[2]?.value;
  const axes = inputs[3]?.value;
  return { pads: toNumbers(pads), value: constant ? toNumbers(constant)[0] ?? 0 : 0, axes: axes ? toNumbers(axes) : undefined };
}

/**
 * Clip's bound `index` (1: min, 2: max): the input when the node has it (opset 11+), else the
 * attribute of that name (opset < 11), else `fallback`. Undefined when the input is there but
 * its value is not known on the host.
 */
export function clipBound(node: NodeProto, inputs: ParameterInputs, index: 1 | 2, fallback: number): number | undefined {
  if (node.input[index]) {
    const tensor = inputs[index]?.value;
    return tensor ? toNumbers(tensor)[0] : undefined;
  }
  return floatAttribute(node, index === 1 ? 'min' : 'max', fallback);
}

/** A unary node's attributes with ONNX's defaults filled in (Gelu's `approximate` defaults to 'none'). */
export function unaryAttributes(node: NodeProto): Record<string, number | string> {
  const values: Record<string, number | string> = {};
  if (node.opType === 'Gelu') values.approximate = stringAttribute(node, 'approximate', 'none');
  for (const [name, fallback] of Object.entries(ONNX_UNARY[node.opType]?.attributes ?? {})) values[name] = floatAttribute(node, name, fallback);
  return values;
}
