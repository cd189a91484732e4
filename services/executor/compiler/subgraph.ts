/**
 * Subgraphs (If's branches, Loop's and Scan's body) as their parent node runs them on the GPU.
 * A body is compiled once at load, like a model of its own whose inputs are what the parent binds
 * (its own inputs, then the outer-scope values it reads). When the parent is planned for concrete
 * shapes, the body is walked for the shapes and host values of that run (once per branch taken
 * or per iteration) and its dispatches are appended to the parent's plan with their bindings
 * rewritten: body inputs to what the parent binds, body intermediates to the parent's scratch,
 * body host values to the parent's tables and body constants to the parent's constants. So a
 * subgraph runs inside the single step of its parent, and the runtime knows nothing about it.
 */
import { elementCount, onnxCodeOf, type Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, ModelProto, ModelSignature, NodeProto } from '../../onnx/model.ts';
import { tensorProto } from '../../onnx/builder.ts';
import type { GraphProto, ValueInfoProto } from '../../protocol/generated/onnx/onnx.ts';
import { failedPrecondition, NexusError } from '../../domain/errors.ts';
import { copyDispatch, copyVariants, type KernelVariant } from '../kernels/index.ts';
import { declaredDatatype, unsupported, type BindingRef, type GpuTraits, type LoadContext, type Location, type NodeInput, type PlannedKernel } from '../ops/index.ts';
import { STORAGE_BYTES, storageOf, stridesOf, toStorageBytes, type Precision, type StorageType } from '../tensor/index.ts';
import type { Segmentation } from './segments.ts';
import type { ShapeWalk, walkShapes } from './shape-walk.ts';
import type { DeviceStep, Step } from './steps.ts';

/** What a compiled body is to its parent (a BodyGraph has all of it). */
export interface BodyGraph {
  readonly signature: Pick<ModelSignature, 'inputs'>;
  readonly steps: readonly Step[];
  readonly outputs: readonly string[];
  readonly constants: ReadonlyMap<string, HostTensor>;
  readonly datatypes: ReadonlyMap<string, Datatype>;
  readonly locations: ReadonlyMap<string, Location>;
}

/**
 * The compiler as bodies need it, handed over by compile-graph.ts when it loads: that module
 * imports this one, so importing it back would make an import cycle.
 */
export interface SubgraphCompiler {
  compile(model: ModelProto, options: { readonly precision: Precision; readonly traits: GpuTraits }): BodyGraph;
  segmentation(graph: BodyGraph): Segmentation;
  walk: typeof walkShapes;
}

let compiler: SubgraphCompiler | undefined;

export function provideSubgraphCompiler(provided: SubgraphCompiler): void {
  compiler = provided;
}

function subgraphCompiler(): SubgraphCompiler {
  if (!compiler) throw new Error('the graph compiler has not provided itself to subgraphs');
  return compiler;
}

/** One input of a body as the parent binds it when the model loads. */
export interface BodyInput {
  readonly name: string;
  readonly datatype: Datatype;
  /** Known at load: the body holds it as an initializer (and folds what it computes from it). */
  readonly constant?: HostTensor;
}

/** A body compiled at load, with what the parent needs to append its dispatches to its own plan. */
export interface CompiledBody {
  readonly graph: BodyGraph;
  /** The body's inputs in the order `runBody` binds them. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** "Loop 'loop_1' body": errors inside the body name it. */
  readonly label: string;
  /** "body", "then_branch": what the parent calls it. */
  readonly what: string;
  /** Body constant -> the parent's constant holding it. */
  readonly constantNames: ReadonlyMap<string, string>;
  /** Where each body step's variants start among the parent's. */
  readonly variantOffsets: ReadonlyMap<DeviceStep, number>;
}

/**
 * The variants of a parent that runs subgraphs: every body step's, then one copy kernel per
 * storage type (results are copied into the parent's outputs, slices into the body's inputs).
 */
export class VariantTable {
  readonly variants: KernelVariant[] = [];
  private readonly copies = new Map<StorageType, number>();

  add(variants: readonly KernelVariant[]): number {
    const offset = this.variants.length;
    this.variants.push(...variants);
    return offset;
  }

  /** Adds the copy kernels of these storage types (at load: the runtime builds every pipeline then). */
  addCopies(storages: Iterable<StorageType>): void {
    for (const storage of storages) if (!this.copies.has(storage)) this.copies.set(storage, this.add(copyVariants(storage)));
  }

  copyOffset(storage: StorageType): number {
    const offset = this.copies.get(storage);
    if (offset === undefined) throw new Error(`no copy kernel for ${storage} was added at load`);
    return offset;
  }
}

/**
 * Compiles `graph` as a model whose inputs are `inputs` (constants become initializers), with
 * `prelude` nodes run first, and registers its constants and variants with the parent. Refuses
 * a body that reads back values it computes on the GPU, or whose outputs' shapes the GPU decides.
 */
export function compileBody(
  context: LoadContext, table: VariantTable, what: string, graph: GraphProto, inputs: readonly BodyInput[], prelude: readonly NodeProto[] = [],
): CompiledBody {
  const label = `${context.node.opType} '${context.node.name}' ${what}`;
  const model: ModelProto = {
    irVersion: 8, opsetImport: [{ domain: '', version: context.opset }], producerName: 'subgraph', producerVersion: '', domain: '',
    modelVersion: 1, docString: '', metadataProps: [],
    graph: {
      name: `${context.node.name}/${what}`, docString: '', valueInfo: [],
      node: [...prelude, ...graph.node],
      initializer: [
        ...graph.initializer,
        ...inputs.filter((input) => input.constant).map((input) => tensorProto(input.name, input.constant!.datatype, input.constant!.shape, input.constant!.data)),
      ],
      input: inputs.filter((input) => !input.constant).map((input) => typedValue(input.name, input.datatype, graph.input.find((value) => value.name === input.name))),
      output: graph.output.map((value) => typedValue(value.name, declaredDatatype(value) ?? 'FP32', value)),
    },
  };
  let compiled: BodyGraph;
  try {
    compiled = subgraphCompiler().compile(model, { precision: context.precision, traits: context.traits });
  } catch (error) {
    if (error instanceof NexusError) throw new NexusError(error.code, `${label}: ${error.message}`, { cause: error });
    throw error;
  }
  if (subgraphCompiler().segmentation(compiled).segments.length > 1) {
    throw unsupported(context.node, `a ${what} that reads back on the host values it computes on the GPU (a subgraph runs as one step of its parent)`);
  }
  const constantNames = new Map<string, string>();
  for (const [name, tensor] of compiled.constants) constantNames.set(name, context.addConstant(`${what}/${name}`, tensor));
  const variantOffsets = new Map<DeviceStep, number>();
  for (const step of compiled.steps) {
    if (step.kind !== 'device') continue;
    if (step.operator.deviceShaped?.length) throw unsupported(context.node, `a ${what} holding ${step.label}, whose output shape the GPU decides`);
    variantOffsets.set(step, table.add(step.operator.variants));
  }
  return { graph: compiled, inputs: inputs.map((input) => input.name), outputs: graph.output.map((value) => value.name), label, what, constantNames, variantOffsets };
}

function typedValue(name: string, datatype: Datatype, declared: ValueInfoProto | undefined): ValueInfoProto {
  const dims = declared?.type?.tensorType?.shape?.dim ?? [];
  return {
    name, docString: '',
    type: { denotation: '', tensorType: { elemType: onnxCodeOf(datatype), shape: { dim: dims.map((dim) => ({ ...dim })) } } },
  };
}

/** A value while a parent's plan is built: its shape, its value when the host knows it, and where its bytes are. */
export interface BoundValue extends NodeInput {
  readonly ref: BindingRef;
}

/** The parent a program is assembled for. */
export interface ProgramContext {
  readonly node: NodeProto;
  readonly precision: LoadContext['precision'];
  readonly table: VariantTable;
}

/** The plan of a parent that runs subgraphs, as it is assembled. */
export class SubgraphProgram {
  readonly dispatches: PlannedKernel[] = [];
  readonly scratch: number[] = [];
  readonly tables: Uint32Array[] = [];
  /** Dispatches at most, so that an unrolled loop cannot build a plan without end. */
  static readonly MAX_DISPATCHES = 65_536;
  /** Bytes of intermediates live at once at most (freed ones are reused first). */
  static readonly MAX_SCRATCH_BYTES = 2 ** 30;
  /** Scratch in use, and scratch handed back, by element count. */
  private readonly allocated = new Set<number>();
  private readonly free = new Map<number, number[]>();
  private scratchTotal = 0;

  private readonly context: ProgramContext;
  /** Bytes of one scratch element: the storage of the parent's output 0 (plan-layout sizes scratch so). */
  private readonly scratchElementBytes: number;
  private readonly maxPerDimension: number;

  constructor(context: ProgramContext, scratchElementBytes: number, maxPerDimension: number) {
    this.context = context;
    this.scratchElementBytes = scratchElementBytes;
    this.maxPerDimension = maxPerDimension;
  }

  /** Fresh scratch for a value of `shape` and `datatype`. */
  scratchFor(shape: readonly number[], datatype: Datatype): BindingRef {
    return this.scratchBytes(elementCount(shape) * STORAGE_BYTES[storageOf(datatype, this.context.precision)]);
  }

  private scratchBytes(bytes: number): BindingRef {
    const count = Math.max(1, Math.ceil(bytes / this.scratchElementBytes));
    const reused = this.free.get(count)?.pop();
    if (reused !== undefined) {
      this.allocated.add(reused);
      return { scratch: reused };
    }
    this.scratchTotal += count * this.scratchElementBytes;
    if (this.scratchTotal > SubgraphProgram.MAX_SCRATCH_BYTES) {
      throw failedPrecondition(
        `${this.context.node.opType} '${this.context.node.name}': its subgraphs need more than ${SubgraphProgram.MAX_SCRATCH_BYTES} bytes of intermediates at once`,
      );
    }
    this.scratch.push(count);
    this.allocated.add(this.scratch.length - 1);
    return { scratch: this.scratch.length - 1 };
  }

  /**
   * Hands the scratch of `values` back for later dispatches to reuse, except what `keep` still
   * refers to (a value carried on, or passed through). Dispatches run in order, each seeing the
   * writes of those before it, so a buffer is free once the last dispatch reading it is planned.
   */
  release(values: Iterable<BindingRef>, keep: Iterable<BindingRef> = []): void {
    const kept = new Set<number>();
    for (const ref of keep) if ('scratch' in ref) kept.add(ref.scratch);
    for (const ref of values) {
      if (!('scratch' in ref) || kept.has(ref.scratch) || !this.allocated.has(ref.scratch)) continue;
      this.allocated.delete(ref.scratch);
      const count = this.scratch[ref.scratch];
      const list = this.free.get(count);
      if (list) list.push(ref.scratch);
      else this.free.set(count, [ref.scratch]);
    }
  }

  /** A host value as a table the dispatches bind (its bytes as the GPU stores them). */
  tableFor(tensor: HostTensor, name: string): BindingRef {
    const bytes = toStorageBytes(tensor, storageOf(tensor.datatype, this.context.precision), name);
    const words = new Uint32Array(Math.ceil(bytes.byteLength / 4));
    new Uint8Array(words.buffer).set(bytes);
    this.tables.push(words);
    return { table: this.tables.length - 1 };
  }

  /**
   * Copies `shape` elements of `datatype` read at `inStrides` from `inOffset` in `from` to
   * `outStrides` from `outOffset` in `to`.
   */
  copy(datatype: Datatype, from: BindingRef, to: BindingRef, shape: readonly number[], layout: {
    inStrides?: readonly number[]; outStrides?: readonly number[]; inOffset?: number; outOffset?: number;
  } = {}): void {
    if (elementCount(shape) === 0) return;
    const contiguous = stridesOf(shape);
    const dispatch = copyDispatch({
      shape, inStrides: layout.inStrides ?? contiguous, outStrides: layout.outStrides ?? contiguous, inOffset: layout.inOffset ?? 0, outOffset: layout.outOffset ?? 0,
    }, this.maxPerDimension);
    const offset = this.context.table.copyOffset(storageOf(datatype, this.context.precision));
    this.push({ ...dispatch, variant: offset + (dispatch.variant ?? 0), bindings: [from, to] });
  }

  push(kernel: PlannedKernel): void {
    if (this.dispatches.length >= SubgraphProgram.MAX_DISPATCHES) {
      throw failedPrecondition(`${this.context.node.opType} '${this.context.node.name}': its subgraphs unroll to more than ${SubgraphProgram.MAX_DISPATCHES} dispatches`);
    }
    this.dispatches.push(kernel);
  }

  /**
   * Walks `body` for `inputs` (in the body's input order) and appends its dispatches; returns
   * its outputs. FAILED_PRECONDITION when the body reads on the host a value only the GPU knows.
   */
  runBody(body: CompiledBody, inputs: readonly BoundValue[]): BoundValue[] {
    const { graph } = body;
    const shapes = new Map<string, readonly number[]>();
    const values = new Map<string, HostTensor>(graph.constants);
    const refs = new Map<string, BindingRef>();
    for (const [name, tensor] of graph.constants) {
      shapes.set(name, tensor.shape);
      refs.set(name, { value: body.constantNames.get(name)! });
    }
    body.inputs.forEach((name, index) => {
      if (graph.constants.has(name)) return;
      const input = inputs[index];
      shapes.set(name, input.shape);
      refs.set(name, input.ref);
      if (input.value) values.set(name, input.value);
    });
    for (const name of subgraphCompiler().segmentation(graph).hostReadInputs) {
      if (!values.has(name)) throw unsupported(this.context.node, `a ${body.what} that reads '${name}' on the host while it is computed on the GPU`);
    }
    let walk: ShapeWalk;
    try {
      walk = subgraphCompiler().walk(graph.steps, graph.constants, shapes, this.maxPerDimension, undefined, { shapes, values, start: 0, end: graph.steps.length });
    } catch (error) {
      if (error instanceof NexusError) throw new NexusError(error.code, `${body.label}: ${error.message}`, { cause: error });
      throw error;
    }
    const refOf = (name: string | undefined): BindingRef => {
      if (!name) return { placeholder: true };
      let ref = refs.get(name);
      if (!ref) {
        const value = walk.values.get(name);
        if (!value) throw new Error(`${body.label}: value '${name}' has no storage`);
        ref = this.tableFor(value, name);
        refs.set(name, ref);
      }
      return ref;
    };
    const temporaries: BindingRef[] = [];
    for (const step of graph.steps) {
      if (step.kind !== 'device') continue;
      const plan = walk.plans.get(step)!;
      if (step.operator.kind === 'alias') {
        refs.set(step.outputs[0], refOf(step.inputs[0]));
        continue;
      }
      step.outputs.forEach((name, output) => {
        if (!name || !plan.outputShapes[output]) return;
        const ref = this.scratchFor(plan.outputShapes[output], graph.datatypes.get(name)!);
        refs.set(name, ref);
        temporaries.push(ref);
      });
      const unit = STORAGE_BYTES[storageOf(graph.datatypes.get(step.outputs[0])!, this.context.precision)];
      const stepScratch = (plan.scratch ?? []).map((count) => this.scratchBytes(count * unit));
      temporaries.push(...stepScratch);
      const tableOffset = this.tables.length;
      this.tables.push(...(plan.tables ?? []));
      const variant = body.variantOffsets.get(step)!;
      for (const kernel of plan.dispatches) {
        const bindings = kernel.bindings.map((binding): BindingRef => {
          if ('input' in binding) return refOf(step.inputs[binding.input]);
          if ('output' in binding) return refOf(step.outputs[binding.output]);
          if ('value' in binding) return { value: body.constantNames.get(binding.value) ?? binding.value };
          if ('scratch' in binding) return stepScratch[binding.scratch];
          if ('table' in binding) return { table: tableOffset + binding.table };
          if ('dims' in binding) throw new Error(`${step.label}: device-shaped outputs are refused at load`);
          return binding;
        });
        this.push({ ...kernel, variant: variant + (kernel.variant ?? 0), bindings });
      }
    }
    const results = body.outputs.map((name): BoundValue => {
      const shape = walk.shapes.get(name);
      if (!shape) throw new Error(`${body.label}: output '${name}' has no shape`);
      return { shape, value: walk.values.get(name), ref: refOf(name) };
    });
    // What the body computed and does not return is free again once its dispatches are planned.
    this.release(temporaries, results.map((result) => result.ref));
    return results;
  }
}
