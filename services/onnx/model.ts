/**
 * Reading ONNX models: decoding, initializer data as typed arrays, and the model's signature.
 */
import { ModelProto, TensorProto_DataLocation, type TensorProto, type ValueInfoProto } from '../protocol/generated/onnx/onnx.ts';
import { invalidArgument } from '../domain/errors.ts';
import { BYTES_PER_ELEMENT, datatypeOfOnnxCode, elementCount, viewAs, type Datatype, type TypedArray } from './datatypes.ts';

export type { ModelProto, NodeProto, TensorProto, AttributeProto } from '../protocol/generated/onnx/onnx.ts';

/** A tensor's name, datatype and shape; -1 marks a variable dimension. */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** A tensor held in host memory. */
export interface HostTensor {
  datatype: Datatype;
  shape: number[];
  data: TypedArray;
}

/** Decodes ONNX bytes; throws INVALID_ARGUMENT when they are not an ONNX model with a graph. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  let model: ModelProto;
  try {
    model = ModelProto.decode(bytes);
  } catch (error) {
    throw invalidArgument(`not an ONNX model: ${(error as Error).message}`);
  }
  if (!model.graph || model.irVersion <= 0) {
    throw invalidArgument('not an ONNX model: no graph or no IR version');
  }
  return model;
}

/** The default-domain opset the model imports (ai.onnx), or 0 if none. */
export function defaultOpsetVersion(model: ModelProto): number {
  const entry = model.opsetImport.find((opset) => opset.domain === '' || opset.domain === 'ai.onnx');
  return entry?.version ?? 0;
}

function specOf(value: ValueInfoProto): TensorSpec {
  const tensorType = value.type?.tensorType;
  if (!tensorType) {
    throw invalidArgument(`graph value '${value.name}' is not a tensor (a sequence, optional or map): KServe v2 requests and responses carry tensors only`);
  }
  const dims = tensorType.shape?.dim ?? [];
  return {
    name: value.name,
    datatype: datatypeOfOnnxCode(tensorType.elemType),
    shape: dims.map((dim) => (dim.dimValue !== undefined && dim.dimValue > 0 ? dim.dimValue : -1)),
  };
}

/** The model's graph inputs (initializers excluded) and outputs. */
export function signatureOf(model: ModelProto): ModelSignature {
  const graph = model.graph!;
  const initializerNames = new Set(graph.initializer.map((tensor) => tensor.name));
  return {
    inputs: graph.input.filter((value) => !initializerNames.has(value.name)).map(specOf),
    outputs: graph.output.map(specOf),
  };
}

/**
 * An initializer or constant's data as a host tensor. Handles raw_data and the typed fields;
 * external data must have been read in first (executor/compiler/external-data.ts, from the
 * model's directory), so a tensor still pointing at a file is refused here.
 */
export function tensorFromProto(tensor: TensorProto): HostTensor {
  const datatype = datatypeOfOnnxCode(tensor.dataType);
  const shape = tensor.dims.map(Number);
  const count = elementCount(shape);
  if (tensor.dataLocation === TensorProto_DataLocation.EXTERNAL || tensor.externalData.length > 0) {
    throw invalidArgument(`tensor '${tensor.name}' uses external data, which only a model loaded from its directory can read`);
  }
  if (tensor.rawData.byteLength > 0) {
    const expected = count * BYTES_PER_ELEMENT[datatype];
    if (tensor.rawData.byteLength !== expected) {
      throw invalidArgument(`tensor '${tensor.name}' has ${tensor.rawData.byteLength} bytes of raw data, expected ${expected}`);
    }
    return { datatype, shape, data: viewAs(datatype, tensor.rawData) };
  }
  const data = typedDataOf(tensor, datatype);
  if (data.length !== count) {
    throw invalidArgument(`tensor '${tensor.name}' has ${data.length} elements, its shape [${shape}] needs ${count}`);
  }
  return { datatype, shape, data };
}

function typedDataOf(tensor: TensorProto, datatype: Datatype): TypedArray {
  switch (datatype) {
    case 'FP32': return Float32Array.from(tensor.floatData);
    case 'FP64': return Float64Array.from(tensor.doubleData);
    case 'INT64': return BigInt64Array.from(tensor.int64Data, (value) => BigInt(value));
    case 'UINT64': return BigUint64Array.from(tensor.uint64Data, (value) => BigInt(value));
    case 'UINT32': return Uint32Array.from(tensor.uint64Data);
    case 'INT32': return Int32Array.from(tensor.int32Data);
    case 'INT16': return Int16Array.from(tensor.int32Data);
    case 'INT8': return Int8Array.from(tensor.int32Data);
    case 'UINT16': case 'FP16': case 'BF16': return Uint16Array.from(tensor.int32Data);
    case 'UINT8': case 'BOOL': return Uint8Array.from(tensor.int32Data);
    case 'BYTES': throw invalidArgument(`tensor '${tensor.name}' holds strings, which are not supported`);
  }
}

