/**
 * The conformance cases at later opsets. ONNX 1.12's cases import opsets up to 17; a case
 * lifted to opset N is the same model importing N, which means each node under its operator's
 * version in effect at N. numpy's outputs were computed for the original version, so the
 * reference for a lifted case is onnxruntime's CPU provider running the lifted model (it
 * resolves every operator's version itself, independently of our table); a lifted case
 * onnxruntime refuses (the operator was removed or changed its signature by N) is not a case at
 * N. Where onnxruntime already disagrees with numpy at the original opset, its answer at N is no
 * reference either and the case is left out.
 */
import ort from 'onnxruntime-node';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { Datatype } from '../../services/onnx/datatypes.ts';
import type { HostTensor } from '../../services/onnx/model.ts';

/** ModelProto's `opset_import` field and OperatorSetIdProto's `domain` / `version`. */
const OPSET_IMPORT_FIELD = 8;

/**
 * `modelBytes` with its default-domain opset import set to `opset`, every other field copied
 * byte for byte (so parts of the model our decoder does not know survive).
 */
export function liftOpset(modelBytes: Uint8Array, opset: number): Uint8Array {
  const reader = new BinaryReader(modelBytes);
  const writer = new BinaryWriter();
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const [field, wireType] = reader.tag();
    if (field === OPSET_IMPORT_FIELD && wireType === WireType.LengthDelimited) {
      const entry = reader.bytes();
      const domain = domainOf(entry);
      if (domain === '' || domain === 'ai.onnx') {
        writer.uint32((OPSET_IMPORT_FIELD << 3) | WireType.LengthDelimited).fork().uint32((2 << 3) | WireType.Varint).int64(opset).join();
        continue;
      }
    } else {
      reader.skip(wireType, field);
    }
    writer.raw(modelBytes.subarray(start, reader.pos));
  }
  return writer.finish();
}

function domainOf(entry: Uint8Array): string {
  const reader = new BinaryReader(entry);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) return reader.string();
    reader.skip(wireType, field);
  }
  return '';
}

const ORT_TYPES: Partial<Record<Datatype, ort.Tensor.Type>> = {
  FP32: 'float32', FP64: 'float64', FP16: 'float16', INT8: 'int8', UINT8: 'uint8', INT16: 'int16', UINT16: 'uint16',
  INT32: 'int32', UINT32: 'uint32', INT64: 'int64', UINT64: 'uint64', BOOL: 'bool',
};

function datatypeOfOrt(type: ort.Tensor.Type): Datatype | undefined {
  return (Object.entries(ORT_TYPES).find(([, ortType]) => ortType === type)?.[0]) as Datatype | undefined;
}

/**
 * onnxruntime CPU's outputs for `modelBytes` on `inputs` (in graph-input order, named), or the
 * reason it gave none: it refused the model, or a type neither side of the comparison reads.
 */
export async function ortOutputs(modelBytes: Uint8Array, inputs: ReadonlyMap<string, HostTensor>, outputNames: readonly string[]):
  Promise<HostTensor[] | string> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of inputs) {
    const type = ORT_TYPES[tensor.datatype];
    if (!type) return `onnxruntime-node takes no ${tensor.datatype} tensors`;
    // onnxruntime-node 1.30 reads no float16 input (from a Uint16Array or a Float16Array alike:
    // "not enough space: expected 24, got 0"), though it returns float16 outputs.
    if (tensor.datatype === 'FP16') return 'onnxruntime-node takes no FP16 inputs';
    feeds[name] = new ort.Tensor(type, tensor.data as ort.Tensor.DataType, tensor.shape);
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
  } catch (error) {
    return `onnxruntime refuses it: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`;
  }
  try {
    const results = await session.run(feeds);
    const outputs: HostTensor[] = [];
    for (const name of outputNames) {
      const tensor = results[name];
      const datatype = tensor && datatypeOfOrt(tensor.type);
      if (!tensor || !datatype) return `onnxruntime gave output '${name}' as ${tensor?.type}`;
      const data = tensor.data instanceof Float16Array ? new Uint16Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.length) : tensor.data;
      outputs.push({ datatype, shape: [...tensor.dims], data: data as HostTensor['data'] });
    }
    return outputs;
  } catch (error) {
    return `onnxruntime failed to run it: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`;
  } finally {
    await session.release();
  }
}
