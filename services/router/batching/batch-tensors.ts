/**
 * The tensor side of batching: stacking the requests of a batch into one input per name along
 * dimension 0, and cutting each output back into one slice per request. Pure.
 */
import type { Tensor } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { BYTES_PER_ELEMENT, elementCount, isDatatype } from '../../onnx/index.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import type { ValidatedRequest } from '../admission/index.ts';

/** One request's slice of the batch's outputs, by output name. */
export type RequestOutputs = Map<string, Tensor>;

/** Concatenates each input of the requests along dimension 0; `totalRows` is the sum of their rows. */
export function stackInputs(requests: readonly ValidatedRequest[], totalRows: number): Tensor[] {
  return requests[0].inputs.map((first, index) => {
    if (requests.length === 1) return { name: first.name, datatype: first.datatype, shape: first.shape, data: first.data };
    const parts = requests.map((request) => request.inputs[index].data);
    const data = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
    let offset = 0;
    for (const part of parts) {
      data.set(part, offset);
      offset += part.byteLength;
    }
    return { name: first.name, datatype: first.datatype, shape: [totalRows, ...first.shape.slice(1)], data };
  });
}

/**
 * Cuts each output along dimension 0 into one slice per request, `rows[i]` rows each. Throws
 * INTERNAL when an output's first dimension is not `totalRows`.
 */
export function splitOutputs(outputs: readonly Tensor[], rows: readonly number[], totalRows: number): RequestOutputs[] {
  const slices: RequestOutputs[] = rows.map(() => new Map());
  for (const output of outputs) {
    // What an executor sends is checked like anything else from the network: a tensor shorter
    // than its shape would hand clients views past its end.
    const expectedBytes = isDatatype(output.datatype) ? elementCount(output.shape) * BYTES_PER_ELEMENT[output.datatype] : undefined;
    if (expectedBytes === undefined || (output.datatype !== 'BYTES' && output.data.byteLength !== expectedBytes)) {
      throw new NexusError(ErrorCode.DATA_LOSS,
        `the executor returned output '${output.name}' as ${output.datatype} [${output.shape}] with ${output.data.byteLength} bytes; that shape holds ${expectedBytes ?? 'no known number of'} bytes`);
    }
    if (rows.length === 1) {
      slices[0].set(output.name, output);
      continue;
    }
    if (output.shape[0] !== totalRows || !isDatatype(output.datatype)) {
      throw new NexusError(ErrorCode.INTERNAL, `output '${output.name}' has shape [${output.shape}], which cannot be split into ${totalRows} rows`);
    }
    const rowShape = output.shape.slice(1);
    const rowBytes = elementCount(rowShape) * BYTES_PER_ELEMENT[output.datatype];
    let offset = 0;
    rows.forEach((count, index) => {
      slices[index].set(output.name, {
        name: output.name, datatype: output.datatype, shape: [count, ...rowShape],
        data: output.data.subarray(offset, offset + count * rowBytes),
      });
      offset += count * rowBytes;
    });
  }
  return slices;
}
