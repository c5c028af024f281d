/**
 * Row reductions for software adapters: one invocation per row computes exactly what a workgroup
 * of `threads` lanes computes with `workgroupReduceWgsl` (`_sparse.ts`) — lane `l` folds the
 * values `c = l, l + threads, …` in ascending order, then the lanes' results are combined by the
 * same halving tree — so results are bit-identical to the workgroup kernels, with the same
 * rounding depth, but without workgroup memory or barriers. On llvmpipe a barrier suspends and
 * resumes every SIMD vector of the workgroup (a coroutine switch each), which made the
 * workgroup-per-row kernels 5–10× slower than this form. Also the frame both forms share (the
 * row kernel's `main`, its column loop and grid), used by LayerNorm, softmax and cross-entropy.
 *
 * @module
 */

import { grid1d } from "../runtime.ts";
import { wgslItemMain, wgslRowMain } from "./_wgsl.ts";

/** Workgroup size of the row-per-invocation kernels. */
export const SERIAL_ROWS_PER_WORKGROUP = 64;

/** A row kernel's parts (see {@linkcode rowKernelWgsl}). */
export interface RowKernel {
  /** The WGSL bindings; the uniform `p` has a `rows` field. */
  bindings: string;
  /** One invocation per row (software adapters) instead of one workgroup. */
  serial: boolean;
  /** Lanes per row of the workgroup form. */
  threads: number;
  /** Length of the workgroup array `red` of the workgroup form (default `threads`). */
  red?: number;
  /** WGSL expression of the row length: the row starts at `o = row · width`. */
  width: string;
  /** The statements after that, each line ending with a newline. */
  body: string;
}

/**
 * WGSL of a row kernel: the bindings, then one workgroup of `threads` lanes per row with the
 * `var<workgroup> red` array that `workgroupReduceWgsl` reduces over, or (`serial`) one invocation
 * per row, {@linkcode SERIAL_ROWS_PER_WORKGROUP} to a workgroup (grid: {@linkcode rowGrid}); then
 * the row's offset `o` and `body`, with `row`, `o` and `lid` in scope.
 *
 * @param k The kernel's parts.
 * @returns The kernel's WGSL.
 */
export function rowKernelWgsl(k: RowKernel): string {
  const main = k.serial
    ? wgslItemMain("row", "p.rows", SERIAL_ROWS_PER_WORKGROUP)
    : `var<workgroup> red: array<f32, ${k.red ?? k.threads}>;\n\n${wgslRowMain(k.threads)}`;
  return `${k.bindings}\n${main}\n  let o = row * ${k.width};\n${k.body}}\n`;
}

/**
 * The WGSL `for` header over the columns `c < count` of a row that this invocation handles: the
 * lane's (`lid`, step `threads`), or all of them when `serial`.
 *
 * @param serial Whether the serial form runs.
 * @param threads Lanes per row of the workgroup form.
 * @param count WGSL expression of the row length.
 * @returns The loop header, without its body.
 */
export function columnLoopWgsl(serial: boolean, threads: number, count: string): string {
  return serial
    ? `for (var c = 0u; c < ${count}; c++)`
    : `for (var c = lid; c < ${count}; c += ${threads}u)`;
}

/**
 * The grid of a row kernel: one workgroup per row, or with the serial form (`serial`, chosen on
 * software adapters) one invocation per row, {@linkcode SERIAL_ROWS_PER_WORKGROUP} to a workgroup.
 *
 * @param serial Whether the serial form runs.
 * @param rows Number of rows.
 * @returns The grid (see `grid1d`).
 */
export function rowGrid(serial: boolean, rows: number): [number, number] {
  return grid1d(serial ? Math.ceil(rows / SERIAL_ROWS_PER_WORKGROUP) : rows);
}

/** What one serial tree reduction computes. */
export interface SerialTreeReduce {
  /** Name of the WGSL `let` that receives the result (and prefix of its private array). */
  name: string;
  /** Lanes of the workgroup kernel whose tree is reproduced (a power of two). */
  threads: number;
  /** How values combine. */
  op: "sum" | "max";
  /** WGSL expression of the number of values. */
  count: string;
  /** WGSL expression of value `c` (given the WGSL name of the index). */
  value: (c: string) => string;
}

function combine(op: "sum" | "max", a: string, b: string): string {
  return op === "sum" ? `${a} + ${b}` : `max(${a}, ${b})`;
}

/**
 * WGSL statements that declare `let <name>` as the reduction of `value(0 … count−1)` in the
 * workgroup kernels' order (see the module notes).
 *
 * @param r The reduction.
 * @returns WGSL statements for a function body.
 */
export function serialTreeReduceWgsl(r: SerialTreeReduce): string {
  const { name, threads: t, op } = r;
  const init = op === "sum" ? "0.0" : "-3.4028234663852886e38";
  const red = `${name}Red`;
  return `  var ${red}: array<f32, ${t}>;
  for (var l = 0u; l < ${t}u; l++) {
    var acc = ${init};
    for (var c = l; c < ${r.count}; c += ${t}u) { acc = ${combine(op, "acc", r.value("c"))}; }
    ${red}[l] = acc;
  }
  for (var s = ${t / 2}u; s > 0u; s = s >> 1u) {
    for (var i = 0u; i < s; i++) { ${red}[i] = ${combine(op, `${red}[i]`, `${red}[i + s]`)}; }
  }
  let ${name} = ${red}[0];`;
}
