/**
 * The WGSL every kernel of this folder opens with, written once: the binding convention (storage
 * buffers in order, then the uniform block) and the entry of a one-thread-per-item kernel.
 *
 * @module
 */

import { GRID_BUILTINS, LINEAR_WORKGROUP, WG_1D } from "./_params.ts";

/**
 * WGSL declarations of a kernel's interface, in the binding convention every kernel here follows:
 * the storage buffers at `@binding(0…n−1)` of group 0 in order, then the uniform `p: Params` at
 * `@binding(n)`; the `Params` fields must match {@linkcode packParams}'s order.
 *
 * @param params The fields of `struct Params`, e.g. `"count: u32, s: f32"`.
 * @param storage One entry per buffer, its access then its declaration, e.g. `"read x: array<f32>"`.
 * @returns The struct and binding lines, without a final newline.
 */
export function wgslBindings(params: string, storage: readonly string[]): string {
  const lines = storage.map((entry, i) => {
    const space = entry.indexOf(" ");
    const access = entry.slice(0, space), decl = entry.slice(space + 1);
    return `@group(0) @binding(${i}) var<storage, ${access}> ${decl};`;
  });
  return [
    `struct Params { ${params} }`,
    ...lines,
    `@group(0) @binding(${storage.length}) var<uniform> p: Params;`,
  ].join("\n");
}

/**
 * The opening of a one-thread-per-item kernel on a {@linkcode grid} with no bounds guard (for a
 * kernel whose threads past the end must still reach a barrier, or that guards its own stores):
 * the entry point and the item index `index`. The caller's WGSL closes the function's brace.
 *
 * @param index The WGSL name of the item index, e.g. `"i"`.
 * @param threads Threads per workgroup (default {@linkcode WG_1D}), one item each.
 * @returns The WGSL lines, without a final newline.
 */
export function wgslItemEntry(index: string, threads: number = WG_1D): string {
  return `@compute @workgroup_size(${threads})
fn main(${GRID_BUILTINS}) {
  let ${index} = ${LINEAR_WORKGROUP} * ${threads}u + lid;`;
}

/**
 * The opening of a one-thread-per-item kernel on a {@linkcode grid}: {@linkcode wgslItemEntry}
 * and the early return past `bound`. The caller's WGSL closes the function's brace.
 *
 * @param index The WGSL name of the item index, e.g. `"i"`.
 * @param bound The WGSL expression of the item count, e.g. `"p.count"`.
 * @param threads Threads per workgroup (default {@linkcode WG_1D}), one item each.
 * @returns The WGSL lines, without a final newline.
 */
export function wgslItemMain(index: string, bound: string, threads: number = WG_1D): string {
  return `${wgslItemEntry(index, threads)}
  if (${index} >= ${bound}) { return; }`;
}

/**
 * The opening of a one-workgroup-per-row kernel: the entry point with `threads` threads, the row
 * index `row` and the early return past `p.rows`. The caller's WGSL closes the function's brace.
 *
 * @param threads Threads per workgroup.
 * @returns The WGSL lines, without a final newline.
 */
export function wgslRowMain(threads: number): string {
  return `@compute @workgroup_size(${threads})
fn main(${GRID_BUILTINS}) {
  let row = ${LINEAR_WORKGROUP};
  if (row >= p.rows) { return; }`;
}

/**
 * WGSL `let`s splitting a linear index into coordinates, innermost first: with axes
 * `[[a0, n0], [a1, n1], …]` and `outer`, `a0 = index % n0`, `a1 = (index / n0) % n1`, …, and
 * `outer` the rest (row-major `[outer, …, a1, a0]`).
 *
 * @param index The WGSL name of the linear index.
 * @param axes The inner axes' names and WGSL extents, innermost first.
 * @param outer The name of the outermost coordinate.
 * @returns The WGSL lines, each indented two spaces, without a final newline.
 */
export function unravelWgsl(
  index: string,
  axes: readonly (readonly [string, string])[],
  outer: string,
): string {
  const lines: string[] = [];
  let rest = index;
  axes.forEach(([name, extent], i) => {
    lines.push(`  let ${name} = ${rest} % ${extent};`);
    const next = i === axes.length - 1 ? outer : `${index}Rest${i}`;
    lines.push(`  let ${next} = ${rest} / ${extent};`);
    rest = next;
  });
  return lines.join("\n");
}
