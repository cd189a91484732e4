/**
 * Builds ONNX models in code: one-node models for kernel tests, whole models for examples.
 *
 *   const graph = new GraphBuilder('mlp');
 *   graph.input('x', 'FP32', [-1, 4]);
 *   graph.initializer('w', 'FP32', [4, 3], weights);
 *   graph.node('MatMul', ['x', 'w'], ['y']);
 *   graph.output('y', 'FP32', [-1, 3]);
 *   const bytes = graph.toBytes({ opset: 17 });
 */
import {
  AttributeProto_AttributeType as AttributeType, ModelProto, TensorProto_DataLocation,
  type AttributeProto, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from '../protocol/generated/onnx/onnx.ts';
import { bytesOf, onnxCodeOf, type Datatype, type TypedArray } from './datatypes.ts';

/** An attribute value. Plain integers become INT, other numbers FLOAT; use `float()` to force FLOAT. */
export type AttributeValue =
  | number | string | number[] | string[] | FloatAttribute | FloatsAttribute | TensorAttribute | GraphAttribute | GraphsAttribute;
export interface FloatAttribute { kind: 'float'; value: number }
export interface FloatsAttribute { kind: 'floats'; value: number[] }
export interface TensorAttribute { kind: 'tensor'; datatype: Datatype; shape: number[]; data: TypedArray }

/** A subgraph (If's branches, Loop's and Scan's body). */
export interface GraphAttribute { kind: 'graph'; graph: GraphBuilder }
export interface GraphsAttribute { kind: 'graphs'; graphs: GraphBuilder[] }

export const float = (value: number): FloatAttribute => ({ kind: 'float', value });
export const floats = (value: number[]): FloatsAttribute => ({ kind: 'floats', value });
export const graphAttribute = (graph: GraphBuilder): GraphAttribute => ({ kind: 'graph', graph });
export const tensorAttribute = (datatype: Datatype, shape: number[], data: TypedArray): TensorAttribute =>
  ({ kind: 'tensor', datatype, shape, data });

function emptyAttribute(name: string): AttributeProto {
  return {
    name, type: AttributeType.UNDEFINED, f: 0, i: 0, s: new Uint8Array(), t: undefined, g: undefined,
    floats: [], ints: [], strings: [], tensors: [], graphs: [],
  };
}

function attributeProto(name: string, value: AttributeValue): AttributeProto {
  const attribute = emptyAttribute(name);
  if (typeof value === 'number') {
    if (Number.isInteger(value)) Object.assign(attribute, { type: AttributeType.INT, i: value });
    else Object.assign(attribute, { type: AttributeType.FLOAT, f: value });
  } else if (typeof value === 'string') {
    Object.assign(attribute, { type: AttributeType.STRING, s: new TextEncoder().encode(value) });
  } else if (Array.isArray(value)) {
    if (value.every((item) => typeof item === 'string')) {
      Object.assign(attribute, { type: AttributeType.STRINGS, strings: value.map((item) => new TextEncoder().encode(item)) });
    } else if (value.every((item) => Number.isInteger(item))) {
      Object.assign(attribute, { type: AttributeType.INTS, ints: value });
    } else {
      Object.assign(attribute, { type: AttributeType.FLOATS, floats: value });
    }
  } else if (value.kind === 'float') {
    Object.assign(attribute, { type: AttributeType.FLOAT, f: value.value });
  } else if (value.kind === 'floats') {
    Object.assign(attribute, { type: AttributeType.FLOATS, floats: value.value });
  } else if (value.kind === 'graph') {
    Object.assign(attribute, { type: AttributeType.GRAPH, g: value.graph.toGraph() });
  } else if (value.kind === 'graphs') {
    Object.assign(attribute, { type: AttributeType.GRAPHS, graphs: value.graphs.map((graph) => graph.toGraph()) });
  } else {
    Object.assign(attribute, { type: AttributeType.TENSOR, t: tensorProto('', value.datatype, value.shape, value.data) });
  }
  return attribute;
}

/** A TensorProto holding `data` as raw little-endian bytes. */
export function tensorProto(name: string, datatype: Datatype, shape: number[], data: TypedArray): TensorProto {
  return {
    name, dims: shape, dataType: onnxCodeOf(datatype), rawData: bytesOf(data).slice(),
    floatData: [], int32Data: [], stringData: [], int64Data: [], doubleData: [], uint64Data: [],
    docString: '', externalData: [], dataLocation: TensorProto_DataLocation.DEFAULT,
  };
}

/** A value with no type: a subgraph input or output whose type the operator infers. */
function untypedValueInfo(name: string): ValueInfoProto {
  return { name, docString: '', type: undefined };
}

function valueInfo(name: string, datatype: Datatype, shape: Array<number | string>): ValueInfoProto {
  return {
    name,
    docString: '',
    type: {
      denotation: '',
      tensorType: {
        elemType: onnxCodeOf(datatype),
        shape: {
          dim: shape.map((dim, axis) =>
            typeof dim === 'string' ? { dimParam: dim, denotation: '' }
            : dim < 0 ? { dimParam: axis === 0 ? 'batch' : `d${axis}`, denotation: '' }
            : { dimValue: dim, denotation: '' }),
        },
      },
    },
  };
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly name: string;

  constructor(name = 'graph') {
    this.name = name;
  }

  /** A graph input; a negative or string dimension is symbolic (variable). */
  input(name: string, datatype: Datatype, shape: Array<number | string>): this {
    this.inputs.push(valueInfo(name, datatype, shape));
    return this;
  }

  output(name: string, datatype: Datatype, shape: Array<number | string>): this {
    this.outputs.push(valueInfo(name, datatype, shape));
    return this;
  }

  /** A subgraph input or output without a type (ONNX lets Loop and Scan bodies leave them to the operator). */
  untypedInput(name: string): this {
    this.inputs.push(untypedValueInfo(name));
    return this;
  }

  untypedOutput(name: string): this {
    this.outputs.push(untypedValueInfo(name));
    return this;
  }

  initializer(name: string, datatype: Datatype, shape: number[], data: TypedArray): this {
    this.initializers.push(tensorProto(name, datatype, shape, data));
    return this;
  }

  /** A node; `domain` '' is ONNX's own (a node of another domain, such as 'com.microsoft', makes toModel import it). */
  node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}, name?: string, domain = ''): this {
    this.nodes.push({
      opType, input: inputs, output: outputs, domain, docString: '',
      name: name ?? `${opType.toLowerCase()}_${this.nodes.length}`,
      attribute: Object.entries(attributes).map(([key, value]) => attributeProto(key, value)),
    });
    return this;
  }

  /**
   * The model. `domains` gives the opset version imported for each other domain (default: 1 for
   * every domain a node uses; a domain listed here is imported even when no node uses it).
   */
  /** The graph alone, as a subgraph attribute holds it. */
  toGraph(): GraphProto {
    return {
      name: this.name, node: this.nodes, initializer: this.initializers, docString: '',
      input: this.inputs, output: this.outputs, valueInfo: [],
    };
  }

  toModel(options: { opset?: number; producer?: string; metadata?: Record<string, string>; domains?: Record<string, number> } = {}): ModelProto {
    const domains = new Map<string, number>();
    for (const node of this.nodes) if (node.domain) domains.set(node.domain, 1);
    for (const [domain, version] of Object.entries(options.domains ?? {})) domains.set(domain, version);
    return {
      irVersion: 8,
      opsetImport: [{ domain: '', version: options.opset ?? 17 }, ...[...domains].map(([domain, version]) => ({ domain, version }))],
      producerName: options.producer ?? 'nexusml',
      producerVersion: '0.1.0',
      domain: '',
      modelVersion: 1,
      docString: '',
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: this.toGraph(),
    };
  }

  toBytes(options: Parameters<GraphBuilder['toModel']>[0] = {}): Uint8Array {
    return ModelProto.encode(this.toModel(options)).finish();
  }
}
