/**
 * A row's max-subtracted sum of exponentials, the core of the causal softmax and of the
 * cross-entropy's log-sum-exp, in the workgroup form and its serial twin (same trees, same order,
 * bit-identical; see `_serial_reduce.ts`). Private to `gpu/kernels/`.
 *
 * @module
 */

import { workgroupReduceWgsl } from "./_sparse.ts";
import { serialTreeReduceWgsl } from "./_serial_reduce.ts";

/**
 * WGSL statements over a workgroup of `threads` lanes: `let m` = the maximum of `value(c)` for
 * `c < count`, then `red[0]` = `Σ exp(value(c) − m)`, each tree-reduced by
 * `workgroupReduceWgsl`. Needs `lid` and `var<workgroup> red: array<f32, threads>`.
 *
 * @param threads Lanes of the workgroup.
 * @param count WGSL expression of the number of values.
 * @param value WGSL expression of value `c` (given the WGSL name of the index).
 * @returns WGSL statements for a function body.
 */
export function expSumWgsl(threads: number, count: string, value: (c: string) => string): string {
  return `  var mx = -3.4028234663852886e38;
  for (var c = lid; c < ${count}; c += ${threads}u) { mx = max(mx, ${value("c")}); }
  red[lid] = mx;
${workgroupReduceWgsl({ type: "f32", op: "max", components: 1 }, threads)}
  let m = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var c = lid; c < ${count}; c += ${threads}u) { sum += exp(${value("c")} - m); }
  red[lid] = sum;
${workgroupReduceWgsl({ type: "f32", op: "sum", components: 1 }, threads)}`;
}

/**
 * {@linkcode expSumWgsl}'s sums in one invocation, in the same order: `let m` and `let total`.
 *
 * @param threads Lanes of the workgroup kernel whose trees are reproduced.
 * @param count WGSL expression of the number of values.
 * @param value WGSL expression of value `c` (given the WGSL name of the index).
 * @returns WGSL statements for a function body.
 */
export function expSumSerialWgsl(
  threads: number,
  count: string,
  value: (c: string) => string,
): string {
  const m = serialTreeReduceWgsl({ name: "m", threads, op: "max", count, value });
  const total = serialTreeReduceWgsl({
    name: "total",
    threads,
    op: "sum",
    count,
    value: (c) => `exp(${value(c)} - m)`,
  });
  return `${m}\n${total}`;
}
