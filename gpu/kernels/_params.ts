/**
 * Small helpers shared by the dense kernel families: packing a uniform parameter block, and the
 * 1-D grid every element-wise kernel uses.
 *
 * @module
 */

import { grid1d } from "../runtime.ts";

/** Threads per workgroup of the 1-D (element-wise) kernels. */
export const WG_1D = 256;

/**
 * Packs a uniform block: the `u32` fields first, then the `f32` fields, in order (the WGSL struct
 * must declare them in the same order). Numbers are written as unsigned 32-bit integers and
 * float32 values respectively.
 *
 * @param u32 The unsigned integer fields.
 * @param f32 The float fields (default none).
 * @returns The words of the block.
 */
export function packParams(u32: readonly number[], f32: readonly number[] = []): Uint32Array {
  const words = new Uint32Array(Math.max(1, u32.length + f32.length));
  const floats = new Float32Array(words.buffer);
  u32.forEach((v, i) => words[i] = v >>> 0);
  f32.forEach((v, i) => floats[u32.length + i] = v);
  return words;
}

/**
 * Workgroups for `count` items at `perWorkgroup` items each, as a 2-D grid (see `grid1d`).
 *
 * @param count Number of items.
 * @param perWorkgroup Items per workgroup (default {@linkcode WG_1D}).
 * @returns The grid `[x, y]` (`[0, 1]` for no items).
 */
export function grid(count: number, perWorkgroup = WG_1D): [number, number] {
  if (count === 0) return [0, 1];
  return grid1d(Math.ceil(count / perWorkgroup));
}

/**
 * WGSL expression of the linear workgroup index for a grid made by {@linkcode grid}; needs the
 * builtins `wid: vec3<u32>` (workgroup_id) and `nwg: vec3<u32>` (num_workgroups) in scope.
 */
export const LINEAR_WORKGROUP: string = "(wid.x + wid.y * nwg.x)";

/** The WGSL builtin parameters matching {@linkcode LINEAR_WORKGROUP}. */
export const GRID_BUILTINS: string =
  "@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, " +
  "@builtin(local_invocation_index) lid: u32";

/**
 * Most slots (tensors) of one multi-tensor dispatch (AdamW, sums of squares): bounds the kernels'
 * `switch` and uniform block (at most 64 bytes a slot, within WebGPU's guaranteed 64 KiB); the
 * device's `maxStorageBuffersPerShaderStage` bounds them too.
 */
export const MAX_SLOTS = 128;

/**
 * WGSL statements declaring `var s`: the slot of workgroup `wg` in a dispatch whose `slots`
 * non-empty slots own consecutive runs of workgroups, `first(t)` being the WGSL expression of slot
 * `t`'s first workgroup (ascending from 0); the last slot whose first workgroup is `≤ wg`, found
 * by binary search (workgroup-uniform).
 *
 * @param slots Number of slots.
 * @param first WGSL expression of slot `t`'s first workgroup, given the WGSL name of `t`.
 * @returns WGSL statements for a function body.
 */
export function slotOfWorkgroupWgsl(slots: number, first: (t: string) => string): string {
  return `  var s = 0u;
  var hi = ${slots}u;
  while (s + 1u < hi) {
    let mid = (s + hi) / 2u;
    if (${first("mid")} <= wg) { s = mid; } else { hi = mid; }
  }`;
}
