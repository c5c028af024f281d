/**
 * Attention's head layout in one dispatch each way: `split` takes packed rows `x [B·T, P·d]`
 * (`P` parts of width `d = h·hd` side by side, e.g. `[q | k | v]`) to `P` tensors `[B·h, T, hd]`,
 * and `merge` is its inverse. Each replaces, per part, a column slice or pad and a
 * `[A, B, C, D] → [A, C, B, D]` permutation (and, in the backward pass, the adds that summed the
 * padded gradients). One thread per element of a head tensor, looping over the parts; values are
 * moved bit for bit.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { unravelWgsl, wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { cachedSpec } from "./_sparse.ts";

/** Most parts one dispatch moves (one storage binding each, plus the packed tensor's). */
export const MAX_HEAD_PARTS = 7;

/** The shape both directions share. */
export interface HeadDims {
  /** Sequences `B`. */
  batch: number;
  /** Sequence length `T`. */
  T: number;
  /** Heads `h`. */
  heads: number;
  /** Head width `hd` (`d = h·hd`). */
  hd: number;
  /** Parts `P` side by side in a packed row (1 to {@linkcode MAX_HEAD_PARTS}). */
  parts: number;
}

/**
 * The head split (`"split"`: `x` → `out0 … out{P−1}`) or merge (`"merge"`: `in0 …` → `x`) kernel.
 * Bindings: the `P` head tensors after `x` for a split, before it for a merge, then uniform
 * `{ count, T, h, hd }` with `count = B·T·h·hd`.
 *
 * @param direction `"split"` or `"merge"`.
 * @param parts `P`.
 * @returns The kernel, key `heads-{direction}-p{P}`.
 * @throws {RangeError} If `parts` is not an integer in `[1, MAX_HEAD_PARTS]`.
 */
export function headsSpec(direction: "split" | "merge", parts: number): KernelSpec {
  if (!Number.isInteger(parts) || parts < 1 || parts > MAX_HEAD_PARTS) {
    throw new RangeError(
      `Cannot build the head ${direction} kernel: parts must be an integer in [1, ${MAX_HEAD_PARTS}], got ${parts}`,
    );
  }
  const names = Array.from({ length: parts }, (_, i) => `part${i}`);
  const split = direction === "split";
  const storage = split
    ? ["read x: array<u32>", ...names.map((n) => `read_write ${n}: array<u32>`)]
    : [...names.map((n) => `read ${n}: array<u32>`), "read_write x: array<u32>"];
  const moves = names.map((n, i) => {
    const at = `src + ${i}u * d`;
    return split ? `  ${n}[o] = x[${at}];` : `  x[${at}] = ${n}[o];`;
  });
  return cachedSpec(
    `heads-${direction}-p${parts}`,
    () =>
      `${wgslBindings("count: u32, T: u32, h: u32, hd: u32", storage)}

${wgslItemMain("o", "p.count")}
  // o = ((b·h + head)·T + t)·hd + e  ↔  x[(b·T + t)·P·d + part·d + head·hd + e]
  let d = p.h * p.hd;
${unravelWgsl("o", [["e", "p.hd"], ["t", "p.T"], ["head", "p.h"]], "b")}
  let src = (b * p.T + t) * ${parts}u * d + head * p.hd + e;
${moves.join("\n")}
}
`,
  );
}

/** The uniform block and element count of one head tensor. */
function headParams(dims: HeadDims): { count: number; params: Uint32Array } {
  const count = dims.batch * dims.T * dims.heads * dims.hd;
  return { count, params: packParams([count, dims.T, dims.heads, dims.hd]) };
}

/**
 * Records the split of packed rows `x [B·T, P·d]` into `P` head tensors `[B·h, T, hd]` (the caller
 * checks the shapes).
 *
 * @param rt The runtime.
 * @param x The packed rows.
 * @param dims The shape.
 * @returns `P` new pooled buffers, in part order.
 */
export function encodeSplitHeads(rt: GpuRuntime, x: GPUBuffer, dims: HeadDims): GPUBuffer[] {
  const { count, params } = headParams(dims);
  const outs = Array.from({ length: dims.parts }, () => rt.alloc(4 * count));
  if (count > 0) rt.dispatch(headsSpec("split", dims.parts), [x, ...outs], grid(count), params);
  return outs;
}

/**
 * Records the merge of `P` head tensors `[B·h, T, hd]` into packed rows `[B·T, P·d]` (the caller
 * checks the shapes).
 *
 * @param rt The runtime.
 * @param parts The head tensors, in part order.
 * @param dims The shape (`parts` = their number).
 * @returns A new pooled buffer.
 */
export function encodeMergeHeads(
  rt: GpuRuntime,
  parts: readonly GPUBuffer[],
  dims: HeadDims,
): GPUBuffer {
  const { count, params } = headParams(dims);
  const out = rt.alloc(4 * count * dims.parts);
  if (count > 0) rt.dispatch(headsSpec("merge", dims.parts), [...parts, out], grid(count), params);
  return out;
}
