/** The Open Inference Protocol's response for one answered request. Pure. */
import type {
  InferParameter, InferTensorContents, ModelInferResponse, ModelInferResponse_InferOutputTensor,
} from '../../protocol/generated/inference/grpc_service.ts';
import type { Tensor } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { asContentsField } from '../../protocol/int64-contents.ts';
import { isDatatype, viewAs } from '../../onnx/index.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import type { ValidatedRequest } from '../admission/index.ts';
import { classify, labelsOf, rawBytesOf } from './classification.ts';

function emptyContents(): InferTensorContents {
  return {
    boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [],
    fp32Contents: [], fp64Contents: [], bytesContents: [],
  };
}

/** Typed contents for an output tensor, in the field its datatype uses. */
function typedContents(tensor: Tensor): InferTensorContents {
  const contents = emptyContents();
  if (!isDatatype(tensor.datatype)) return contents;
  const values = viewAs(tensor.datatype, tensor.data);
  switch (tensor.datatype) {
    case 'FP32': contents.fp32Contents = Array.from(values as Float32Array); break;
    case 'FP64': contents.fp64Contents = Array.from(values as Float64Array); break;
    case 'INT8': case 'INT16': case 'INT32': contents.intContents = Array.from(values as Int32Array); break;
    case 'UINT8': case 'UINT16': case 'UINT32': contents.uintContents = Array.from(values as Uint32Array); break;
    // Exact, as a number holds integers only up to 2^53 (see protocol/int64-contents.ts); copied,
    // so an answer kept for a while (a task's) holds its own values, not the batch's buffer.
    case 'INT64': contents.int64Contents = asContentsField((values as BigInt64Array).slice()); break;
    case 'UINT64': contents.uint64Contents = asContentsField((values as BigUint64Array).slice()); break;
    case 'BOOL': contents.boolContents = Array.from(values as Uint8Array, (value) => value !== 0); break;
    default: throw new NexusError(ErrorCode.FAILED_PRECONDITION, `output datatype ${tensor.datatype} needs raw contents; send inputs in raw_input_contents`);
  }
  return contents;
}

/**
 * The response to a request: its requested outputs in order, in raw contents when it sent raw
 * inputs, with `parameters` telling how it ran. Throws INTERNAL when an output is missing. An
 * output named in `classifications` is answered as its top K classes (classification.ts).
 */
export function inferResponseOf(
  version: ModelVersion, requestId: string, validated: ValidatedRequest, outputs: Map<string, Tensor>, parameters: Record<string, InferParameter>,
  classifications: ReadonlyMap<string, number> = new Map(),
): ModelInferResponse {
  const outputTensors: ModelInferResponse_InferOutputTensor[] = [];
  const rawOutputContents: Uint8Array[] = [];
  for (const name of validated.outputNames) {
    const tensor = outputs.get(name);
    if (!tensor) throw new NexusError(ErrorCode.INTERNAL, `the executor returned no output '${name}'`);
    const count = classifications.get(name);
    if (count !== undefined) {
      const { shape, strings } = classify(tensor, count, labelsOf(version.tags));
      outputTensors.push({
        name, datatype: 'BYTES', shape, parameters: {},
        contents: validated.rawOutput ? undefined : { ...emptyContents(), bytesContents: strings.map((text) => new TextEncoder().encode(text)) },
      });
      if (validated.rawOutput) rawOutputContents.push(rawBytesOf(strings));
      continue;
    }
    outputTensors.push({
      name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, parameters: {},
      contents: validated.rawOutput ? undefined : typedContents(tensor),
    });
    if (validated.rawOutput) rawOutputContents.push(tensor.data);
  }
  return {
    modelName: version.modelName,
    modelVersion: String(version.version),
    id: requestId,
    parameters,
    outputs: outputTensors,
    rawOutputContents,
  };
}
