/** Reading callgrind's annotated output, and the fp32 peaks the kernel bench divides by. */
import { describe, expect, it } from 'vitest';
import { partCountOf } from '../../bench/cpu/callgrind.ts';
import { fp32PeakTflops } from '../../bench/lib/gpu-peaks.ts';

const ANNOTATED = `--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
118,231,500 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                  file:function
--------------------------------------------------------------------------------
37,510,344 (31.73%)  ???:v8::internal::Compiler::CompileOptimized(v8::internal::Isolate*, v8::internal::DirectHandle<v8::internal::JSFunction>) [/node]
37,509,901 (31.73%)  ???:v8::internal::(anonymous namespace)::GetOrCompileOptimized(v8::internal::Isolate*) [/node]
 1,725,454 ( 1.46%)  ???:v8::internal::Compiler::Compile(v8::internal::Isolate*, v8::internal::Handle<v8::internal::JSFunction>) [/node]
   977,111 ( 0.83%)  ???:v8::internal::Runtime_ObjectKeys(int, unsigned long*, v8::internal::Isolate*) [/node]
`;

describe('callgrind parts', () => {
  it('count the program total and, apart, what ran inside the compiler entry points', () => {
    expect(partCountOf(ANNOTATED)).toEqual({ instructions: 118_231_500, compilerInstructions: 37_510_344 + 1_725_454 });
  });

  it('refuse output without a total', () => {
    expect(() => partCountOf('nothing here')).toThrow('PROGRAM TOTALS');
  });
});

describe('fp32 peaks', () => {
  it('are found by the adapter name, the more specific name first, and --peak-tflops wins', () => {
    expect(fp32PeakTflops('NVIDIA H100 80GB HBM3')).toEqual({ tflops: 67, source: 'H100 SXM data sheet' });
    expect(fp32PeakTflops('NVIDIA H100 PCIe')?.tflops).toBe(51);
    expect(fp32PeakTflops('nvidia NVIDIA L4 (ada)')?.tflops).toBe(30.3);
    expect(fp32PeakTflops('NVIDIA L40S')?.tflops).toBe(91.6);
    expect(fp32PeakTflops('NVIDIA A100-SXM4-40GB')?.tflops).toBe(19.5);
    expect(fp32PeakTflops('mesa llvmpipe (software)')).toBeUndefined();
    expect(fp32PeakTflops('mesa llvmpipe (software)', 1.5)).toEqual({ tflops: 1.5, source: '--peak-tflops' });
  });
});
