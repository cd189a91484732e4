/**
 * fp32 peak throughput of common NVIDIA GPUs (dense, non-tensor-core, boost clock, from NVIDIA's
 * data sheets), so the kernel bench can say what fraction of the GPU a kernel reaches. The
 * adapter name is matched case-insensitively; the first pattern that matches wins, so more
 * specific names come first.
 */
const PEAKS: Array<{ pattern: RegExp; tflops: number; name: string }> = [
  { pattern: /h200/i, tflops: 67, name: 'H200 SXM' },
  { pattern: /h100.*pcie/i, tflops: 51, name: 'H100 PCIe' },
  { pattern: /h100/i, tflops: 67, name: 'H100 SXM' },
  { pattern: /gh200/i, tflops: 67, name: 'GH200' },
  { pattern: /a100/i, tflops: 19.5, name: 'A100' },
  { pattern: /a10g/i, tflops: 31.2, name: 'A10G' },
  { pattern: /\ba10\b/i, tflops: 31.2, name: 'A10' },
  { pattern: /l40s/i, tflops: 91.6, name: 'L40S' },
  { pattern: /\bl40\b/i, tflops: 90.5, name: 'L40' },
  { pattern: /\bl4\b/i, tflops: 30.3, name: 'L4' },
  { pattern: /\bt4\b/i, tflops: 8.1, name: 'T4' },
  { pattern: /v100/i, tflops: 15.7, name: 'V100' },
  { pattern: /rtx 4090/i, tflops: 82.6, name: 'RTX 4090' },
  { pattern: /rtx 4080/i, tflops: 48.7, name: 'RTX 4080' },
  { pattern: /rtx 3090/i, tflops: 35.6, name: 'RTX 3090' },
  { pattern: /rtx a6000/i, tflops: 38.7, name: 'RTX A6000' },
];

/** The fp32 peak in TFLOPS: `override` when given, else by the adapter's name; undefined when unknown. */
export function fp32PeakTflops(adapterName: string, override?: number): { tflops: number; source: string } | undefined {
  if (override !== undefined && Number.isFinite(override) && override > 0) return { tflops: override, source: '--peak-tflops' };
  const known = PEAKS.find((peak) => peak.pattern.test(adapterName));
  return known && { tflops: known.tflops, source: `${known.name} data sheet` };
}
