// Discrete Fourier transforms (DFT, STFT): one invocation per complex output value,
//
//   y[o, f, k, i] = scale * sum_{n < terms} w[n] * x[o, f * frame_step + n, i] * e^(sign * 2*pi*i * k * n / N)
//
// with sign -1 (forward) or +1 and scale 1 / N (inverse), N = dft_length. Samples past `terms`
// (a dft_length longer than the signal) are zeros and add nothing. The twiddles cos and sin of
// 2*pi * j / N come from a host table, correctly rounded from float64, indexed by (k * n) mod N:
// the GPU's own cos / sin of an f32 angle would leave sin(pi) at -8.7e-8, which sums into errors
// far above the exact zeros of symmetric spectra.
//
// Bindings (group 0):
//   @binding(0) signal  storage, read   array<T>, [outer, length, inner, components]
//   @binding(1) window  storage, read   array<T>, [terms] (read only when HAS_WINDOW)
//   @binding(2) twiddle storage, read   array<u32>, [N, 2]: f32 bits of cos, sin of 2*pi * j / N
//   @binding(3) output  storage, write  array<T>, [outer, frames, bins, inner, 2]
//   @binding(4) params  uniform         Params below
// Type aliases: T is f32 or f16 (sums in f32). Override constants: HAS_WINDOW, WORKGROUP_SIZE.
// Preludes: common/index.wgsl (fast_div). The grid may be 2-D.

override HAS_WINDOW: bool = false;
override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  count: u32,
  inner: u32,
  bins: u32,
  frames: u32,
  length: u32,
  // 1: real samples, 2: (real, imaginary) pairs.
  components: u32,
  frame_step: u32,
  terms: u32,
  dft_length: u32,
  sign: f32,
  scale: f32,
  _pad0: u32,
  inner_inverse: f32,
  bins_inverse: f32,
  frames_inverse: f32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> signal: array<T>;
@group(0) @binding(1) var<storage, read> window: array<T>;
@group(0) @binding(2) var<storage, read> twiddle: array<u32>;
@group(0) @binding(3) var<storage, read_write> output: array<T>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }
  let rest = fast_div(index, params.inner, params.inner_inverse);
  let i = index - rest * params.inner;
  let frame_index = fast_div(rest, params.bins, params.bins_inverse);
  let k = rest - frame_index * params.bins;
  let o = fast_div(frame_index, params.frames, params.frames_inverse);
  let f = frame_index - o * params.frames;

  // Sample n of this transform is at ((o * length + f * frame_step + n) * inner + i) * components.
  var at = ((o * params.length + f * params.frame_step) * params.inner + i) * params.components;
  let stride = params.inner * params.components;
  // k < N, so one subtraction keeps (k * n) mod N in range as n steps.
  let step = k % params.dft_length;
  var phase = 0u;
  var re = 0.0;
  var im = 0.0;
  for (var n = 0u; n < params.terms; n++) {
    var xr = f32(signal[at]);
    var xi = 0.0;
    if (params.components == 2u) { xi = f32(signal[at + 1u]); }
    if (HAS_WINDOW) {
      let w = f32(window[n]);
      xr *= w;
      xi *= w;
    }
    let c = bitcast<f32>(twiddle[2u * phase]);
    let s = params.sign * bitcast<f32>(twiddle[2u * phase + 1u]);
    re += xr * c - xi * s;
    im += xr * s + xi * c;
    at += stride;
    phase += step;
    if (phase >= params.dft_length) { phase -= params.dft_length; }
  }
  output[2u * index] = T(re * params.scale);
  output[2u * index + 1u] = T(im * params.scale);
}
