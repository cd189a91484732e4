/** The compile budgets as pure checks: what each one refuses, with which code and message. */
import { describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { DEFAULT_COMPILE_BUDGETS, resolveBudgets } from '../../../services/executor/compiler/index.ts';
import { checkedElementCount, createFoldAllocator } from '../../../services/executor/compiler/compile-budgets.ts';
import type { NodeProto } from '../../../services/onnx/model.ts';

const node: NodeProto = { name: 'n1', opType: 'ConstantOfShape', domain: '', docString: '', input: [], output: ['y'], attribute: [] };

function codeOf(action: () => unknown): { code: ErrorCode; message: string } {
  try {
    action();
  } catch (error) {
    return { code: (error as NexusError).code, message: (error as Error).message };
  }
  throw new Error('expected a refusal');
}

describe('compile budgets', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_COMPILE_BUDGETS).toEqual({
      foldBytes: 2 ** 30, foldTensorBytes: 2 ** 29, maxNodes: 100_000, weightBytes: 2 ** 31,
      maxTensorElements: 2 ** 31 - 1, compileHeapMb: 2048, compileTimeoutMs: 120_000,
    });
  });

  it('applies overrides and refuses a budget that is not a positive integer', () => {
    expect(resolveBudgets({ maxNodes: 7 }).maxNodes).toBe(7);
    expect(resolveBudgets({}).foldBytes).toBe(DEFAULT_COMPILE_BUDGETS.foldBytes);
    expect(codeOf(() => resolveBudgets({ foldBytes: -1 }))).toEqual({ code: ErrorCode.INVALID_ARGUMENT, message: 'budget foldBytes is -1; it must be a positive integer' });
    expect(codeOf(() => resolveBudgets({ maxNodes: Number.NaN })).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('counts elements only of shapes made of non-negative safe integers, within maxTensorElements', () => {
    expect(checkedElementCount([2, 3, 4], 'x', DEFAULT_COMPILE_BUDGETS)).toBe(24);
    expect(checkedElementCount([], 'x', DEFAULT_COMPILE_BUDGETS)).toBe(1);
    expect(checkedElementCount([0, 2 ** 50], 'x', DEFAULT_COMPILE_BUDGETS)).toBe(0);
    for (const dim of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
      expect(codeOf(() => checkedElementCount([2, dim], 'x', DEFAULT_COMPILE_BUDGETS)).code).toBe(ErrorCode.INVALID_ARGUMENT);
    }
    expect(codeOf(() => checkedElementCount([2 ** 16, 2 ** 16], 'x', DEFAULT_COMPILE_BUDGETS))).toEqual({
      code: ErrorCode.RESOURCE_EXHAUSTED,
      message: 'x has shape [65536, 65536], 4294967296 elements; a tensor may have 2147483647 elements (maxTensorElements, NEXUS_MAX_TENSOR_ELEMENTS)',
    });
  });

  it('refuses a folded tensor over foldTensorBytes before it exists, and folds over foldBytes in all', () => {
    const allocator = createFoldAllocator(resolveBudgets({ foldTensorBytes: 1000, foldBytes: 2000 }));
    expect(codeOf(() => allocator.reserve(node, [1e9], 'FP32'))).toEqual({
      code: ErrorCode.RESOURCE_EXHAUSTED,
      message: "constant folding of ConstantOfShape 'n1' would allocate 4000000000 bytes; the budget per folded tensor is 1000 bytes (foldTensorBytes, NEXUS_FOLD_TENSOR_BYTES)",
    });
    allocator.reserve(node, [250], 'FP32');
    allocator.reserve(node, [125], 'INT64');
    expect(codeOf(() => allocator.reserve(node, [1], 'UINT8'))).toEqual({
      code: ErrorCode.RESOURCE_EXHAUSTED,
      message: "constant folding of ConstantOfShape 'n1' would allocate 1 bytes, 2001 in all; the folding budget is 2000 bytes (foldBytes, NEXUS_FOLD_BUDGET_BYTES)",
    });
  });
});
