/**
 * Naive dense matmul: one thread per output element, a plain loop over K from global memory. The
 * obviously-correct baseline of the matmul family (`matmul.ts`) for tests and benchmarks.
 *
 * @module
 */

import type { KernelSpec } from "../runtime.ts";
import { type MatmulEncoder, PARAMS_STRUCT, transKey } from "./_matmul_shared.ts";
import { cachedSpec } from "./_sparse.ts";

const NAIVE_WG = 16;
const NAIVE_BINDINGS = `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;`;

/**
 * The naive kernel: one thread per element of C (16×16 threads per workgroup, grid
 * `[⌈N/16⌉, ⌈M/16⌉, B]`).
 *
 * @param transA Whether A is stored transposed.
 * @param transB Whether B is stored transposed.
 * @returns The kernel; its key names both transpose flags.
 */
export function matmulNaiveSpec(transA: boolean, transB: boolean): KernelSpec {
  const key = `matmul-naive-${transKey({ transA, transB })}`;
  return cachedSpec(key, () => {
    const aAt = transA ? "kk * p.M + row" : "row * p.K + kk";
    const bAt = transB ? "col * p.K + kk" : "kk * p.N + col";
    const code = `${PARAMS_STRUCT}
${NAIVE_BINDINGS}
@compute @workgroup_size(${NAIVE_WG}, ${NAIVE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y;
  let col = gid.x;
  let batch = gid.z;
  if (row >= p.M || col >= p.N) { return; }
  let aOff = batch * p.M * p.K;
  let bOff = batch * p.K * p.N;
  var acc = 0.0;
  for (var kk = 0u; kk < p.K; kk++) {
    acc += a[aOff + ${aAt}] * b[bOff + ${bAt}];
  }
  c[batch * p.M * p.N + row * p.N + col] = acc;
}
`;
    return code;
  });
}

/** Records the naive product of `a` and `b` into `c` (see {@linkcode matmulNaiveSpec}). */
export const encodeNaiveMatmul: MatmulEncoder<void> = (rt, a, b, c, dims) => {
  const { batch, m, n, k } = dims;
  rt.dispatch(matmulNaiveSpec(dims.transA, dims.transB), [a, b, c], [
    Math.ceil(n / NAIVE_WG),
    Math.ceil(m / NAIVE_WG),
    batch,
  ], new Uint32Array([m, n, k, batch]));
};
