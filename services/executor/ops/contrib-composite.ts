/**
 * Composite operators: one node of the graph that runs as a short program of default-domain
 * operators (their own specs' device operators, built here over synthetic nodes) and of
 * hand-made kernels, chained through scratch tensors in one step. This is how the com.microsoft
 * contrib operators run: SkipLayerNormalization is an Add into a LayerNormalization, Attention a
 * few MatMuls, an Add and a Softmax, each stage exactly the kernel its default-domain form runs.
 *
 *   const program = createComposite(context);
 *   const sum = program.temp();
 *   program.stage(binarySpec('Add'), 'Add', [program.input(0), program.input(1)], [sum]);
 *   program.stage(layerNormSpec, 'LayerNormalization', [sum, program.input(2)], [program.output(0)], { attributes: [...] });
 *   return program.build();
 *
 * Temporaries are scratch tensors of the node's output-0 type (the layout stores every scratch
 * like output 0), or of another type whose storage is no wider (FP32 under a quantized output);
 * inputs of other types (an int32 mask) are read directly by the stage that converts them.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { AttributeProto, HostTensor, NodeProto } from '../../onnx/model.ts';
import { AttributeProto_AttributeType as AttributeType } from '../../protocol/generated/onnx/onnx.ts';
import { product, STORAGE_BYTES, storageOf, toStorageBytes, type Precision } from '../tensor/index.ts';
import type { BindingRef, DeviceOperator, Epilogue, LoadContext, LoadInput, NodeInput, OperatorPlan, OperatorSpec, PlannedKernel } from './contract.ts';
import { required } from './parameters.ts';

/** A tensor inside a composite: a node input or output, a temporary, a constant, or a new shape over another value's buffer. */
export type Value =
  | { readonly kind: 'input'; readonly index: number }
  | { readonly kind: 'output'; readonly index: number }
  | { readonly kind: 'temp'; readonly id: number; readonly datatype?: Datatype }
  | { readonly kind: 'constant'; readonly name: string; readonly tensor: HostTensor }
  /** A small tensor each plan computes on the host from the input shapes and host values (GroupQueryAttention's positions). */
  | { readonly kind: 'table'; readonly id: number; readonly datatype: Datatype; readonly compute: (inputs: ReadonlyArray<NodeInput | undefined>) => HostTensor }
  | { readonly kind: 'view'; readonly of: Value; readonly shape: (shape: readonly number[], inputs: ReadonlyArray<NodeInput | undefined>) => number[] };

interface Stage {
  readonly operator: DeviceOperator;
  readonly inputs: ReadonlyArray<Value | undefined>;
  readonly outputs: ReadonlyArray<Value | undefined>;
  /** Index of the stage's first variant among the composite's. */
  readonly variantBase: number;
}

export interface StageOptions {
  readonly attributes?: readonly AttributeProto[];
  readonly epilogue?: Epilogue;
  /** The opset the stage's spec reads (Softmax's flattening before 13); default the model's. */
  readonly opset?: number;
}

export interface Composite {
  /** Node input `index`, or undefined when the node omits it. */
  input(index: number): Value | undefined;
  /** Node output `index`, or undefined when the node leaves it unnamed (no stage needs to compute it). */
  output(index: number): Value | undefined;
  /**
   * A scratch tensor of the node's output-0 type, or of `datatype` when its storage takes no more
   * bytes per element than output 0's (FP32 values under a UINT8 output, stored as i32).
   */
  temp(datatype?: Datatype): Value;
  /** A constant registered with the model (uploaded once). */
  constant(suffix: string, tensor: HostTensor): Value;
  /** A tensor of `datatype` each plan computes on the host (uploaded as a table). */
  table(datatype: Datatype, compute: (inputs: ReadonlyArray<NodeInput | undefined>) => HostTensor): Value;
  /** `of`'s buffer under the shape `shape` computes from `of`'s shape (and the node's input shapes). */
  view(of: Value, shape: (shape: readonly number[], inputs: ReadonlyArray<NodeInput | undefined>) => number[]): Value;
  /** A stage run by a default-domain operator's spec, over a synthetic node of type `opType`. */
  stage(spec: OperatorSpec, opType: string, inputs: ReadonlyArray<Value | undefined>, outputs: ReadonlyArray<Value | undefined>, options?: StageOptions): void;
  /** A stage run by a hand-made device operator. */
  kernel(operator: DeviceOperator, inputs: ReadonlyArray<Value | undefined>, outputs: ReadonlyArray<Value | undefined>): void;
  /** Runs before the stages plan: checks the node's input shapes (throws INVALID_ARGUMENT). */
  check(shapes: (inputs: ReadonlyArray<NodeInput | undefined>) => void): void;
  /** Node output `index` gets this shape instead of the one its stage computed (same element count). */
  outputShape(index: number, shape: (computed: readonly number[], inputs: ReadonlyArray<NodeInput | undefined>) => number[]): void;
  build(): DeviceOperator;
}

/** The composite program of the contrib node `context` loads. */
export function createComposite(context: LoadContext): Composite {
  const { node } = context;
  const tempType = context.outputTypes[0];
  const stages: Stage[] = [];
  const checks: Array<(inputs: ReadonlyArray<NodeInput | undefined>) => void> = [];
  const reshapes = new Map<number, (computed: readonly number[], inputs: ReadonlyArray<NodeInput | undefined>) => number[]>();
  const variants: DeviceOperator['variants'][number][] = [];
  let temps = 0;

  const nameOf = (value: Value): string => {
    switch (value.kind) {
      case 'input': return node.input[value.index];
      case 'output': return node.output[value.index];
      case 'temp': return `${node.name}/t${value.id}`;
      case 'table': return `${node.name}/table${value.id}`;
      case 'constant': return value.name;
      case 'view': return `${nameOf(value.of)}/view`;
    }
  };
  const datatypeOf = (value: Value): Datatype | undefined => {
    switch (value.kind) {
      case 'input': return context.inputs[value.index]?.datatype;
      case 'output': return context.outputTypes[value.index];
      case 'temp': return value.datatype ?? tempType;
      case 'table': return value.datatype;
      case 'constant': return value.tensor.datatype;
      case 'view': return datatypeOf(value.of);
    }
  };
  const loadInput = (value: Value | undefined): LoadInput => {
    if (!value) return { name: undefined, datatype: undefined, location: undefined, constant: undefined };
    if (value.kind === 'input') return context.inputs[value.index];
    if (value.kind === 'constant') return { name: value.name, datatype: value.tensor.datatype, location: 'constant', constant: value.tensor };
    return { name: nameOf(value), datatype: datatypeOf(value), location: 'device', constant: undefined };
  };

  const composite: Composite = {
    input: (index) => (node.input[index] ? { kind: 'input', index } : undefined),
    output: (index) => (node.output[index] ? { kind: 'output', index } : undefined),
    temp(datatype) {
      if (datatype && STORAGE_BYTES[storageOf(datatype, context.precision)] > STORAGE_BYTES[storageOf(tempType, context.precision)]) {
        throw new Error(`${node.name}: a ${datatype} temporary does not fit the scratch of a ${tempType} output`);
      }
      return { kind: 'temp', id: temps++, datatype };
    },
    table: (datatype, compute) => ({ kind: 'table', id: temps++, datatype, compute }),
    constant: (suffix, tensor) => ({ kind: 'constant', name: context.addConstant(suffix, tensor), tensor }),
    view: (of, shape) => ({ kind: 'view', of, shape }),
    stage(spec, opType, inputs, outputs, options = {}) {
      const stageNode: NodeProto = {
        opType, domain: '', docString: '', name: `${node.name}/${opType}_${stages.length}`,
        input: inputs.map((value) => (value ? nameOf(value) : '')), output: outputs.map((value) => (value ? nameOf(value) : '')),
        attribute: [...(options.attributes ?? [])],
      };
      const outputTypes = spec.types({ node: stageNode, inputTypes: inputs.map((value) => (value ? datatypeOf(value) : undefined)) })
        .map((datatype, index) => (outputs[index] ? datatypeOf(outputs[index]!)! : datatype));
      const operator = spec.device!({
        node: stageNode, opset: options.opset ?? context.opset, precision: context.precision, traits: context.traits,
        inputs: inputs.map(loadInput), outputTypes, epilogue: options.epilogue, addConstant: context.addConstant,
      });
      composite.kernel(operator, inputs, outputs);
    },
    kernel(operator, inputs, outputs) {
      if (operator.deviceShaped?.length) throw new Error(`${node.name}: a composite stage cannot shape its outputs on the GPU`);
      stages.push({ operator, inputs, outputs, variantBase: variants.length });
      variants.push(...operator.variants);
    },
    check: (shapes) => { checks.push(shapes); },
    outputShape: (index, shape) => { reshapes.set(index, shape); },
    build: () => ({
      kind: 'kernel',
      variants,
      plan(inputs, maxPerDimension) {
        for (const check of checks) check(inputs);
        const plan = planStages(node, stages, inputs, maxPerDimension, context.precision);
        for (const [index, shape] of reshapes) plan.outputShapes[index] = shape(plan.outputShapes[index], inputs);
        return plan;
      },
    }),
  };
  return composite;
}

const nameOfTable = (node: NodeProto, id: number) => `${node.name}/table${id}`;

interface Resolved {
  readonly shape: readonly number[];
  readonly binding: BindingRef;
  readonly value?: HostTensor;
}

/** The stages' dispatches for these input shapes, their bindings remapped onto the node's inputs, outputs and scratch. */
function planStages(node: NodeProto, stages: readonly Stage[], inputs: ReadonlyArray<NodeInput | undefined>, maxPerDimension: number, precision: Precision): OperatorPlan {
  // Written values by kind and index: each call of output(i) or temp() is a new object.
  const produced = new Map<string, Resolved>();
  const keyOf = (value: Value) => `${value.kind}:${value.kind === 'temp' ? value.id : value.kind === 'output' ? value.index : ''}`;
  const outputShapes: number[][] = node.output.map(() => []);
  const dispatches: PlannedKernel[] = [];
  const scratch: number[] = [];
  const tables: Uint32Array[] = [];
  const tableIndex = new Map<number, Resolved>();
  const resolve = (value: Value): Resolved => {
    switch (value.kind) {
      case 'table': {
        const known = tableIndex.get(value.id);
        if (known) return known;
        const tensor = value.compute(inputs);
        const bytes = toStorageBytes(tensor, storageOf(value.datatype, precision), nameOfTable(node, value.id));
        const words = new Uint32Array(Math.max(1, Math.ceil(bytes.byteLength / 4)));
        new Uint8Array(words.buffer).set(bytes);
        const resolved = { shape: tensor.shape, binding: { table: tables.push(words) - 1 }, value: tensor };
        tableIndex.set(value.id, resolved);
        return resolved;
      }
      case 'input': {
        const input = required(inputs, value.index);
        return { shape: input.shape, binding: { input: value.index }, value: input.value };
      }
      case 'constant': return { shape: value.tensor.shape, binding: { value: value.name }, value: value.tensor };
      case 'view': {
        const base = resolve(value.of);
        return { shape: value.shape(base.shape, inputs), binding: base.binding };
      }
      default: {
        const done = produced.get(keyOf(value));
        if (!done) throw new Error(`${node.name}: a composite stage reads a value no earlier stage wrote`);
        return done;
      }
    }
  };
  for (const stage of stages) {
    const stageInputs = stage.inputs.map((value) => (value ? resolve(value) : undefined));
    const plan = stage.operator.plan(stageInputs.map((input) => (input ? { shape: input.shape, value: input.value } : undefined)), maxPerDimension);
    const outputBindings = stage.outputs.map((value, index): BindingRef | undefined => {
      if (!value) return undefined;
      const shape = plan.outputShapes[index];
      let binding: BindingRef;
      if (stage.operator.kind === 'alias') {
        if (value.kind !== 'temp') throw new Error(`${node.name}: a composite's reshape stage must write a temporary`);
        binding = stageInputs[0]!.binding;
      } else if (value.kind === 'output') {
        binding = { output: value.index };
        outputShapes[value.index] = [...shape];
      } else if (value.kind === 'temp') {
        binding = { scratch: scratch.push(product(shape)) - 1 };
      } else {
        throw new Error(`${node.name}: a composite stage writes a ${value.kind}`);
      }
      produced.set(keyOf(value), { shape, binding });
      return binding;
    });
    const scratchBase = scratch.length;
    scratch.push(...(plan.scratch ?? []));
    const tableBase = tables.length;
    tables.push(...(plan.tables ?? []));
    const remap = (binding: BindingRef): BindingRef => {
      if ('input' in binding) {
        const input = stageInputs[binding.input];
        if (!input) throw new Error(`${node.name}: a composite stage binds its omitted input ${binding.input}`);
        return input.binding;
      }
      if ('output' in binding) {
        const output = outputBindings[binding.output];
        if (!output) throw new Error(`${node.name}: a composite stage binds its unnamed output ${binding.output}`);
        return output;
      }
      if ('scratch' in binding) return { scratch: scratchBase + binding.scratch };
      if ('table' in binding) return { table: tableBase + binding.table };
      if ('dims' in binding) throw new Error(`${node.name}: a composite stage cannot shape its outputs on the GPU`);
      return binding;
    };
    for (const dispatch of plan.dispatches) {
      dispatches.push({ ...dispatch, variant: stage.variantBase + (dispatch.variant ?? 0), bindings: dispatch.bindings.map(remap) });
    }
  }
  return { outputShapes, dispatches, scratch, tables };
}

// Attributes of the synthetic stage nodes, shaped like the ones the decoder produces.

function attribute(name: string, fields: Partial<AttributeProto>): AttributeProto {
  return {
    name, type: AttributeType.UNDEFINED, f: 0, i: 0, s: new Uint8Array(), t: undefined, g: undefined,
    floats: [], ints: [], strings: [], tensors: [], graphs: [], ...fields,
  };
}

export const intAttr = (name: string, value: number): AttributeProto => attribute(name, { type: AttributeType.INT, i: value });
export const floatAttr = (name: string, value: number): AttributeProto => attribute(name, { type: AttributeType.FLOAT, f: value });
export const intsAttr = (name: string, values: readonly number[]): AttributeProto => attribute(name, { type: AttributeType.INTS, ints: [...values] });
export const stringAttr = (name: string, value: string): AttributeProto => attribute(name, { type: AttributeType.STRING, s: new TextEncoder().encode(value) });
