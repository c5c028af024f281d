/**
 * Embedding lookup and its backward pass.
 *
 * The backward pass is a deterministic scatter-add without atomics: the host, which uploaded the
 * `i32` indices itself, groups the positions `n` by vocabulary row (a CSR list: `offsets[V + 1]`
 * and the positions of each row in ascending `n`), and one GPU thread per `(row, column)` sums its
 * positions in that fixed order — the order in which the reference accumulates.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { dispatchNew } from "./_dispatch.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { cachedSpec } from "./_sparse.ts";

/**
 * Both kernels: bindings `inputs`, then `out`, uniform `{ count, d }`; one thread per element `o`
 * of the `[rows, d]` output, in row `row` (named so in WGSL) and column `j`; then `body`.
 */
function rowsKernelWgsl(inputs: readonly string[], row: string, body: string): string {
  return `${wgslBindings("count: u32, d: u32", [...inputs, "read_write out: array<f32>"])}

${wgslItemMain("o", "p.count")}
  let ${row} = o / p.d;
  let j = o % p.d;
${body}}
`;
}

/**
 * The gather kernel `out[n, j] = table[idx[n], j]`. Bindings: `table`, `idx`, `out`, uniform
 * `{ count, d }`.
 *
 * @returns The kernel, key `embedding-gather`.
 */
export function embeddingSpec(): KernelSpec {
  const inputs = ["read table: array<f32>", "read idx: array<i32>"];
  const body = "  out[o] = table[u32(idx[n]) * p.d + j];\n";
  return cachedSpec("embedding-gather", () => rowsKernelWgsl(inputs, "n", body));
}

/**
 * Records the lookup of `n` rows of width `d` (indices already checked on the host).
 *
 * @param rt The runtime.
 * @param table The table `[V, d]`.
 * @param idx The `i32` indices `[n]`, each in `[0, V)`.
 * @param n Number of indices.
 * @param d Row width.
 * @returns A new pooled buffer `[n, d]`.
 */
export function encodeEmbedding(
  rt: GpuRuntime,
  table: GPUBuffer,
  idx: GPUBuffer,
  n: number,
  d: number,
): GPUBuffer {
  const count = n * d;
  const params = packParams([count, d]);
  return dispatchNew(rt, embeddingSpec(), [table, idx], [4 * count], count, params)[0];
}

/**
 * The backward kernel: `out[v, j] = Σ_{k ∈ [offsets[v], offsets[v+1])} dy[positions[k], j]` in
 * `k` order. Bindings: `dy`, `offsets`, `positions`, `out`, uniform `{ count, d }`
 * (`count = V·d`).
 *
 * @returns The kernel, key `embedding-backward`.
 */
export function embeddingBackwardSpec(): KernelSpec {
  const inputs = ["read dy: array<f32>", "read offsets: array<u32>", "read positions: array<u32>"];
  const body = `  var acc = 0.0;
  for (var k = offsets[v]; k < offsets[v + 1u]; k++) { acc += dy[positions[k] * p.d + j]; }
  out[o] = acc;
`;
  return cachedSpec("embedding-backward", () => rowsKernelWgsl(inputs, "v", body));
}

/**
 * The CSR grouping of positions by vocabulary row: `offsets[v]..offsets[v+1]` index the
 * ascending positions `n` with `ids[n] = v` in `positions`.
 *
 * @param ids Indices, each in `[0, vocab)`.
 * @param vocab Number of rows.
 * @returns `offsets` (`vocab + 1` entries) and `positions` (`ids.length` entries).
 */
export function groupByRow(
  ids: Int32Array,
  vocab: number,
): { offsets: Uint32Array; positions: Uint32Array } {
  const offsets = new Uint32Array(vocab + 1);
  for (let n = 0; n < ids.length; n++) offsets[ids[n] + 1]++;
  for (let v = 0; v < vocab; v++) offsets[v + 1] += offsets[v];
  const fill = offsets.slice(0, vocab);
  const positions = new Uint32Array(ids.length);
  for (let n = 0; n < ids.length; n++) positions[fill[ids[n]]++] = n;
  return { offsets, positions };
}

/**
 * Records the scatter-add of `dy[n, d]` into a zero `[vocab, d]` by the host-side indices `ids`.
 *
 * @param rt The runtime.
 * @param dy The upstream gradient `[n, d]`.
 * @param ids The indices the lookup used (host copy, each in `[0, vocab)`).
 * @param vocab Number of table rows.
 * @param d Row width.
 * @returns A new pooled buffer `[vocab, d]`.
 */
export function encodeEmbeddingBackward(
  rt: GpuRuntime,
  dy: GPUBuffer,
  ids: Int32Array,
  vocab: number,
  d: number,
): GPUBuffer {
  const count = vocab * d;
  const out = rt.alloc(4 * count);
  if (count === 0) return out;
  const { offsets, positions } = groupByRow(ids, vocab);
  const offBuf = rt.upload(offsets);
  const posBuf = rt.upload(positions.length > 0 ? positions : new Uint32Array(1));
  rt.dispatch(
    embeddingBackwardSpec(),
    [dy, offBuf, posBuf, out],
    grid(count),
    packParams([count, d]),
  );
  rt.free(offBuf);
  rt.free(posBuf);
  return out;
}
