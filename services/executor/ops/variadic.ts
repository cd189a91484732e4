/**
 * Sum and Mean of any number of broadcasting inputs (ResNet-50's and ShuffleNet's old exports
 * join branches with Sum). Both fold left to right with the binary Add kernel, as variadic Min
 * and Max do (elementwise.ts); Mean divides in the last Add's epilogue, so it costs no extra pass.
 */
import { UNARY_OPS } from '../kernels/index.ts';
import { numberView } from '../tensor/index.ts';
import type { CpuOp, OperatorSpec } from './contract.ts';
import { cpuBinary } from './cpu-elementwise.ts';
import { reserve, store } from './cpu-indexing.ts';
import { binarySpec } from './elementwise.ts';
import { floatStorage } from './spec-parts.ts';

const addAll = binarySpec('Add', true);

export const sumSpec: OperatorSpec = {
  ...addAll,
  device(context) {
    // ONNX defines Sum and Mean on floats only.
    floatStorage(context);
    return addAll.device!(context);
  },
};

const cpuMean: CpuOp = (context) => {
  const [sum] = cpuBinary('Add')(context);
  reserve(context, sum.shape, context.outputTypes[0]);
  const count = context.inputs.length;
  return [store(context.outputTypes[0], sum.shape, Float64Array.from(numberView(sum), (value) => value / count))];
};

export const meanSpec: OperatorSpec = {
  ...addAll,
  cpu: cpuMean,
  device(context) {
    floatStorage(context);
    // Mean is no fusion head (fuse-epilogue.ts), so the epilogue is free for the division.
    const divide = { op: UNARY_OPS.Scale, alpha: 1 / context.inputs.length, beta: 0 };
    return addAll.device!({ ...context, epilogue: { activation: divide } });
  },
};
