// NonZero in one workgroup: each lane counts the non-zero elements of its contiguous chunk, the
// lanes' counts become offsets (an exclusive scan), then each lane writes the coordinates of its
// non-zero elements in order. The output [rank, count] is written with row stride `count`, into a
// buffer sized for every element being non-zero; `dims` receives [rank, count], which the runtime
// reads back before anything reads the output.
//
//   output[d, n] = coordinate d of the n-th non-zero element (row-major order)
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<i32>
//   @binding(2) dims    storage, write  array<i32>
//   @binding(3) params  uniform         Params below
// Type aliases: T is f32, f16 or i32 (-0.0 counts as zero, NaN as non-zero).
// Unrolled: MAX_RANK. Preludes: common/index.wgsl (fast_div).

const LANES: u32 = 256u;

struct Params {
  count: u32,
  rank: u32,
  chunk: u32,
  _pad: u32,
  // The input's dims, innermost first: dim d is [d / 4][d % 4].
  shape: array<vec4<u32>, 2>,
  inverse: array<vec4<f32>, 2>,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> output: array<i32>;
@group(0) @binding(2) var<storage, read_write> dims: array<i32>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> offsets: array<u32, LANES>;
var<workgroup> total: u32;

@compute @workgroup_size(LANES)
fn main(@builtin(local_invocation_index) lane: u32) {
  let begin = min(lane * params.chunk, params.count);
  let end = min(begin + params.chunk, params.count);
  var found = 0u;
  for (var e = begin; e < end; e++) {
    if (input[e] != T(0)) { found++; }
  }
  offsets[lane] = found;
  workgroupBarrier();
  if (lane == 0u) {
    var sum = 0u;
    for (var other = 0u; other < LANES; other++) {
      let lane_count = offsets[other];
      offsets[other] = sum;
      sum += lane_count;
    }
    total = sum;
  }
  workgroupBarrier();
  let row_stride = total;
  var position = offsets[lane];
  for (var e = begin; e < end; e++) {
    if (input[e] != T(0)) {
      var rest = e;
      //#for d in MAX_RANK
      if ({d}u < params.rank) {
        let size = params.shape[{d}u / 4u][{d}u % 4u];
        let quotient = fast_div(rest, size, params.inverse[{d}u / 4u][{d}u % 4u]);
        output[(params.rank - 1u - {d}u) * row_stride + position] = i32(rest - quotient * size);
        rest = quotient;
      }
      //#end
      position++;
    }
  }
  if (lane == 0u) {
    dims[0] = i32(params.rank);
    dims[1] = i32(row_stride);
  }
}
