// What changes from step to step, shared by every kernel of a decoder step (one uniform block,
// written once per step): how many token rows the step computes and how many of them are sampled.
//
// Token rows are the step's tokens, all sequences' chunks back to back. Each has an entry in
// `token_info` (a vec4<u32>): the token id, its position in its sequence, the sequence's row in
// the step's block tables, and 0.

struct Step {
  tokens: u32,
  logit_rows: u32,
  _pad0: u32,
  _pad1: u32,
}
