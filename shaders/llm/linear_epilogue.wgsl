// The epilogue of the decoder's projections (linear.wgsl, linear_simd.wgsl): bias, activation and
// the residual add, for 4 adjacent output columns of one row.
//
//   ACT 0: y = x W + b
//   ACT 1: y = gelu_new(x W + b)        gelu_new(v) = v / 2 * (1 + tanh(sqrt(2 / pi) * (v + 0.044715 v^3)))
//   ACT 2: y = silu(x Wg + bg) * (x Wu + bu)   (SwiGLU: gate and up halves of one weight matrix)
//   ACCUMULATE: out += y (the residual stream is the output buffer itself), else out = y.
//
// Bindings (group 0), shared by both kernels:
//   @binding(0) x      storage, read        array<f32>, rows of x_stride
//   @binding(1) w      storage, read        array<vec4<W>>, K rows of w_stride4 vec4s (GLU: gate then up)
//   @binding(2) bias   storage, read        array<vec4<f32>>, w_stride4 vec4s; any buffer without HAS_BIAS
//   @binding(3) out    storage, read_write  array<f32>, rows of out_stride, this chunk's columns from out_column
//   @binding(4) params uniform              Params below
//   @binding(5) step   uniform              Step (llm/step.wgsl)
// Type alias: W (f32 or f16) for the weights. Override constants: HAS_BIAS, ACT, ACCUMULATE,
// ROWS_FROM_LOGITS (rows are the step's sampled rows instead of its tokens).

override HAS_BIAS: bool = false;
override ACT: u32 = 0u;
override ACCUMULATE: bool = false;
override ROWS_FROM_LOGITS: bool = false;

struct Params {
  k: u32,
  // vec4 column groups of the output (of each half with GLU), and the real column count.
  n4: u32,
  n: u32,
  x_stride: u32,
  out_stride: u32,
  out_column: u32,
  // vec4s per weight row: n4, or 2 * n4 with GLU.
  w_stride4: u32,
  _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<vec4<W>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<uniform> step: Step;

fn row_count() -> u32 {
  return select(step.tokens, step.logit_rows, ROWS_FROM_LOGITS);
}

// tanh(±10) is ±1 in f32; the clamp keeps exp-based tanh implementations from overflowing.
fn gelu_new(v: vec4<f32>) -> vec4<f32> {
  let inner = 0.7978845608028654 * (v + 0.044715 * v * v * v);
  return 0.5 * v * (1.0 + tanh(clamp(inner, vec4<f32>(-10.0), vec4<f32>(10.0))));
}

fn silu(v: vec4<f32>) -> vec4<f32> {
  return v / (1.0 + exp(-v));
}

// `value` is the sum of columns 4c..4c+3 (the up half's with SwiGLU), `gate` the gate half's.
fn store4(row: u32, c: u32, value: vec4<f32>, gate: vec4<f32>) {
  if (row >= row_count() || c >= params.n4) { return; }
  var y = value;
  var g = gate;
  if (HAS_BIAS) {
    if (ACT == 2u) {
      g += bias[c];
      y += bias[params.n4 + c];
    } else {
      y += bias[c];
    }
  }
  if (ACT == 1u) { y = gelu_new(y); }
  if (ACT == 2u) { y = silu(g) * y; }
  let base = row * params.out_stride + params.out_column;
  for (var j = 0u; j < 4u; j++) {
    let column = c * 4u + j;
    if (column < params.n) {
      let index = base + column;
      out[index] = select(y[j], out[index] + y[j], ACCUMULATE);
    }
  }
}
