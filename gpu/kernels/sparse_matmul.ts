/**
 * The 2:4 compressed sparse matrix product on the GPU: `Y = X · Aᵀ` with `X [T, in]` dense and
 * `A [out, in]` 2:4 along `in`, given compressed (SPEC §1.5: `values [out, in / 2]` + 4-bit codes,
 * flat group `g = row·(in / 4) + col / 4`). This is the forward GEMM of a sparse linear layer,
 * `Z = X · W̃ᵀ`. Only the kept half of `A` is read and only its products are formed: `T·out·in`
 * multiply-adds, half of the dense `2·T·out·in` FLOPs. Its variant `matmul_sparse_switch.ts`
 * reuses each loaded activation across many output rows (issue 15); neither beats the dense wide
 * kernel on the H100 (0.55× and 0.38–0.40×, `results/speed/`), so the backend uses neither.
 *
 * Tiling: a workgroup of 256 threads computes a 64×64 tile of `Y`, each thread a 4×4 register tile
 * (rows `ty + 16r`, columns `tx + 16c`, so stores are coalesced). Each step stages 32 columns of
 * `in` (8 groups): the `64×8` `vec4` groups of `X`, and for the 64 rows of `A` the `64×8` value
 * pairs and codes, in workgroup memory (rows padded by one element against bank conflicts). Per
 * group, a thread reads its four `X` quads once and, for each of its four `A` rows, picks the two
 * coded entries of each quad with `select` (no dynamically indexed registers). Bounds are checked
 * on load (zero fill) and store, so any `T`, `out` and `in % 4 == 0` work.
 *
 * Accumulation is float32, in ascending group order per output, so results differ from a float64
 * reference by float32 rounding only: `|error| ≲ (in / 2)·2^-24·Σ|x||a|`.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { assertBuffer, assertSizes, cachedSpec } from "./_sparse.ts";

const TILE_M = 64;
const TILE_N = 64;
/** Groups of four `in` columns staged per step. */
const TILE_G = 8;
/** Padded row stride (in elements) of the staged tiles. */
const STRIDE = TILE_G + 1;

/**
 * The sparse matmul kernel. Bindings: `x` (`vec4` quads), `values` (`vec2` pairs), `meta`
 * (codes), `y`, uniform `{ tokens, outDim, groupsPerRow }`. Grid `[⌈out / 64⌉, ⌈T / 64⌉]`.
 *
 * @returns The kernel, key `sparse-matmul24-m64n64g8`.
 * @example
 * ```ts
 * import { sparseMatmul24Kernel } from "./sparse_matmul.ts";
 * if (!sparseMatmul24Kernel().key.startsWith("sparse-matmul24")) throw new Error("unexpected");
 * ```
 */
export function sparseMatmul24Kernel(): KernelSpec {
  const key = `sparse-matmul24-m${TILE_M}n${TILE_N}g${TILE_G}`;
  return cachedSpec(key, () => {
    const comp = ["x", "y", "z", "w"];
    const step: string[] = [];
    for (let r = 0; r < 4; r++) {
      step.push(`      let x${r} = xs[(ty + ${16 * r}u) * ${STRIDE}u + q];`);
    }
    for (let c = 0; c < 4; c++) {
      step.push(`      {
        let at = (tx + ${16 * c}u) * ${STRIDE}u + q;
        let a = av[at];
        let code = ac[at];
        let i0 = code & 3u;
        let i1 = code >> 2u;`);
      for (let r = 0; r < 4; r++) {
        step.push(
          `        acc${r}.${comp[c]} += pick(x${r}, i0) * a.x + pick(x${r}, i1) * a.y;`,
        );
      }
      step.push("      }");
    }
    const store: string[] = [];
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++) {
        store.push(
          `  if (row0 + ${16 * r}u < p.tokens && col0 + ${16 * c}u < p.outDim) { ` +
            `y[(row0 + ${16 * r}u) * p.outDim + col0 + ${16 * c}u] = acc${r}.${comp[c]}; }`,
        );
      }
    }
    return `// Y = X * A^T with A 2:4 compressed (SPEC 1.5): 64x64 tile per workgroup, 4x4 per thread.
struct Params { tokens: u32, outDim: u32, groupsPerRow: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> values: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> metadata: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> xs: array<vec4<f32>, ${TILE_M * STRIDE}>;
var<workgroup> av: array<vec2<f32>, ${TILE_N * STRIDE}>;
var<workgroup> ac: array<u32, ${TILE_N * STRIDE}>;

fn pick(v: vec4<f32>, i: u32) -> f32 {
  return select(select(v.x, v.y, i == 1u), select(v.z, v.w, i == 3u), i >= 2u);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.y * ${TILE_M}u;
  let n0 = wid.x * ${TILE_N}u;
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var g0 = 0u; g0 < p.groupsPerRow; g0 += ${TILE_G}u) {
    for (var l = 0u; l < 2u; l++) {
      let idx = lid + 256u * l;
      let r = idx / ${TILE_G}u;
      let q = idx % ${TILE_G}u;
      let gq = g0 + q;
      var xv = vec4<f32>(0.0);
      if (m0 + r < p.tokens && gq < p.groupsPerRow) { xv = x[(m0 + r) * p.groupsPerRow + gq]; }
      xs[r * ${STRIDE}u + q] = xv;
      var a = vec2<f32>(0.0);
      var code = 4u; // positions 0 and 1 of zero values
      if (n0 + r < p.outDim && gq < p.groupsPerRow) {
        let g = (n0 + r) * p.groupsPerRow + gq;
        a = values[g];
        code = (metadata[g >> 3u] >> (4u * (g & 7u))) & 0xfu;
      }
      av[r * ${STRIDE}u + q] = a;
      ac[r * ${STRIDE}u + q] = code;
    }
    workgroupBarrier();
    for (var q = 0u; q < ${TILE_G}u; q++) {
${step.join("\n")}
    }
    workgroupBarrier();
  }
  let row0 = m0 + ty;
  let col0 = n0 + tx;
${store.join("\n")}
}
`;
  });
}

/** Shape of {@linkcode encodeSparseMatmul24}. */
export interface SparseMatmulDims {
  /** `T`: rows of `X` and `Y`. */
  tokens: number;
  /** `in`: the reduction length, a multiple of 4 (columns of `X`, dense columns of `A`). */
  inDim: number;
  /** `out`: rows of `A`, columns of `Y`. */
  outDim: number;
}

/**
 * Records `Y = X · Aᵀ` with `A` 2:4 compressed. Inputs are not modified; the metadata is trusted.
 *
 * @param rt The runtime.
 * @param x `X`, `tokens · inDim` float32 values, row-major.
 * @param values `A`'s kept values, `outDim · inDim / 2` float32 values.
 * @param meta `A`'s codes, `⌈outDim · inDim / 32⌉` `u32` words.
 * @param dims `{ tokens, inDim, outDim }`.
 * @returns A new pooled buffer, `Y` `[tokens, outDim]` row-major.
 * @throws {RangeError} If a size is invalid, `inDim % 4 !== 0`, `tokens` needs more than 65535
 * row tiles, or a buffer is too small.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeSparseMatmul24 } from "./sparse_matmul.ts";
 * const rt = await GpuRuntime.create();
 * // A = [[0, -3, 2, 0]] (values [-3, 2], code 9); X = [[1, 2, 3, 4]]: Y = -6 + 6 = 0.
 * const y = encodeSparseMatmul24(
 *   rt,
 *   rt.upload(new Float32Array([1, 2, 3, 4])),
 *   rt.upload(new Float32Array([-3, 2])),
 *   rt.upload(Uint32Array.of(9)),
 *   { tokens: 1, inDim: 4, outDim: 1 },
 * );
 * const v = new Float32Array(await rt.read(y, 4));
 * rt.destroy();
 * if (v[0] !== 0) throw new Error("unexpected");
 * ```
 */
export function encodeSparseMatmul24(
  rt: GpuRuntime,
  x: GPUBuffer,
  values: GPUBuffer,
  meta: GPUBuffer,
  dims: SparseMatmulDims,
): GPUBuffer {
  const action = "multiply by a compressed 2:4 matrix on the GPU";
  if (dims === null || typeof dims !== "object") {
    throw new TypeError(`Cannot ${action}: dims must be an object {tokens, inDim, outDim}`);
  }
  const { tokens, inDim, outDim } = dims;
  assertSizes({ tokens, inDim, outDim }, action);
  if (inDim % 4 !== 0) {
    throw new RangeError(`Cannot ${action}: inDim must be a multiple of 4, got ${inDim}`);
  }
  const rowTiles = Math.ceil(tokens / TILE_M), colTiles = Math.ceil(outDim / TILE_N);
  if (rowTiles > 65535 || colTiles > 65535) {
    throw new RangeError(
      `Cannot ${action}: at most 65535 tiles of 64 per dimension, got tokens = ${tokens}, outDim = ${outDim}`,
    );
  }
  const groupsPerRow = inDim / 4;
  assertBuffer(x, 4 * tokens * inDim, "x", action);
  assertBuffer(values, 2 * outDim * inDim, "values", action);
  assertBuffer(meta, 4 * Math.ceil((outDim * groupsPerRow) / 8), "meta", action);
  const y = rt.alloc(4 * tokens * outDim);
  if (tokens * outDim > 0) {
    rt.dispatch(
      sparseMatmul24Kernel(),
      [x, values, meta, y],
      [colTiles, rowTiles],
      new Uint32Array([tokens, outDim, groupsPerRow]),
    );
  }
  return y;
}
