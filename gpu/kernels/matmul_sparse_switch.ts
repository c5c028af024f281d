/**
 * 2:4 compressed GEMM that reuses each loaded activation across many output rows (issue 15):
 * `Cᵀ[j, a] = Σ_k X[a, k]·W[j, k]` with `W [rows, K]` 2:4 along k, given in a group-major
 * compressed layout. The lanes of a warp own different tokens `a` and share their output rows `j`,
 * so a row's 2:4 pattern is uniform across the warp: a `switch` over the six patterns picks the
 * two activations of a group from registers by constant index, and nothing diverges. Per group a
 * thread loads its `threadM` tokens × 4 k of X once and uses them for `rows` output rows.
 *
 * `mode: "dense"` is the same kernel with an uncompressed W (four values per group and row, no
 * switch): the same-structure control that isolates the cost of the switch. `mode: "select"` picks
 * the two activations with `select()` chains on the row's decoded indices (no branch, 2 selects per
 * pick); `mode: "gather"` reads them from workgroup memory at the row's indices (no branch, no
 * select, 2 loads per row and token quad): the formulations `experiments/zoo/sparse_bound.ts`
 * measures side by side (issue 15).
 *
 * Layouts (`G = K/4` groups): `wv` `vec4` `[G, rows/2]` = `(v0[j], v1[j], v0[j+1], v1[j+1])`;
 * `wc` `u32` `[G, rows/8]`, the codes `i0 | i1 << 2` of rows `j..j+7` at 4 bits each (dense mode:
 * `wv` `vec4` `[G, rows]`, the group's four values). X is `[A, K]` (`xKMajor: false`) or `[K, A]`;
 * the output is `Cᵀ [rows, A]`. Shapes must fill whole tiles (`switchTilingFits`).
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { doubleBufferedLoop } from "./_double_buffer.ts";

/** Shape of the switch kernel. */
export interface SparseSwitchTiling {
  /** Tokens per thread (multiple of 4). */
  threadM: number;
  /** Output rows per thread (multiple of 8), shared by the 32 lanes of a warp. */
  rows: number;
  /** Warps stacked along the output rows. */
  warpsR: number;
  /** Warps side by side along the tokens. */
  warpsA: number;
  /** Groups of four k staged per slice. */
  groups: number;
}

const COMP = ["x", "y", "z", "w"];
/** The six 2:4 patterns as `[code, i0, i1]`, code `i0 | i1 << 2`. */
const PATTERNS: [number, number, number][] = [[4, 0, 1], [8, 0, 2], [12, 0, 3], [9, 1, 2], [
  13,
  1,
  3,
], [14, 2, 3]];

/** How a row's two kept activations are chosen (see the module notes). */
export type Pick24 = "switch" | "select" | "gather";

/**
 * WGSL statements that add one row's two products per token quad: `acc(q) += x[i0](q)·v0 +
 * x[i1](q)·v1` with `(i0, i1)` from the row's 4-bit code `i0 | i1 << 2`, in that order (so every
 * formulation rounds alike).
 *
 * @param pick The formulation.
 * @param o `code` (a u32 expression), `v0`/`v1` (f32 expressions), `quads` (token quads), `x(k, q)`
 * the activation quad at a constant k in registers, `xAt(k, q)` the same at a k expression (for
 * `gather`: a workgroup-memory read), `acc(q)` the accumulator.
 * @returns The statements, in one block.
 */
export function pickRow24(
  pick: Pick24,
  o: {
    code: string;
    v0: string;
    v1: string;
    quads: number;
    x: (k: number, q: number) => string;
    xAt?: (k: string, q: number) => string;
    acc: (q: number) => string;
  },
): string[] {
  const { code, v0, v1, quads, x, acc } = o;
  const fma2 = (a: (q: number) => string, b: (q: number) => string) =>
    Array.from(
      { length: quads },
      (_, q) =>
        `${acc(q)} = fma(${a(q)}, vec4<f32>(${v0}), ${acc(q)}); ` +
        `${acc(q)} = fma(${b(q)}, vec4<f32>(${v1}), ${acc(q)});`,
    ).join(" ");
  if (pick === "switch") {
    return [
      `switch (${code}) {`,
      ...PATTERNS.map(([c, i0, i1], n) =>
        `  ${n === PATTERNS.length - 1 ? "default" : `case ${c}u`}: { ${
          fma2((q) => x(i0, q), (q) => x(i1, q))
        } }`
      ),
      `}`,
    ];
  }
  const decode = `let c_ = ${code}; let i0_ = c_ & 3u; let i1_ = c_ >> 2u;`;
  if (pick === "gather") {
    if (!o.xAt) throw new TypeError("Cannot build the gather pick: no workgroup-memory reader");
    const xAt = o.xAt;
    return [`{ ${decode} ${fma2((q) => xAt("i0_", q), (q) => xAt("i1_", q))} }`];
  }
  return [
    `{ ${decode} let s01 = i0_ == 1u; let s02 = i0_ == 2u; let s12 = i1_ == 2u; let s13 = i1_ == 3u;`,
    fma2(
      (q) => `select(select(${x(0, q)}, ${x(1, q)}, s01), ${x(2, q)}, s02)`,
      (q) => `select(select(${x(1, q)}, ${x(2, q)}, s12), ${x(3, q)}, s13)`,
    ),
    `}`,
  ];
}

/**
 * The kernel's candidate tilings, fastest first in the forward products of the GEMM zoo on an H100
 * (`experiments/zoo/gemm_speed.ts`, results/device/2026-12-06-h100-gemm-zoo.md).
 */
export const SWITCH_TILINGS: readonly SparseSwitchTiling[] = [
  { threadM: 8, rows: 8, warpsR: 8, warpsA: 1, groups: 4 },
  { threadM: 8, rows: 16, warpsR: 8, warpsA: 1, groups: 2 },
  { threadM: 4, rows: 16, warpsR: 4, warpsA: 2, groups: 4 },
  { threadM: 4, rows: 32, warpsR: 4, warpsA: 2, groups: 2 },
  { threadM: 16, rows: 8, warpsR: 4, warpsA: 1, groups: 2 },
  { threadM: 8, rows: 16, warpsR: 4, warpsA: 1, groups: 4 },
];

/** The zoo's best tiling, the one `experiments/speed.ts` runs. */
export const SWITCH_BEST: SparseSwitchTiling = SWITCH_TILINGS[0];

/** Tokens per workgroup of a tiling. */
export function switchTileA(t: SparseSwitchTiling): number {
  return 32 * t.threadM * t.warpsA;
}

/** Output rows per workgroup of a tiling. */
export function switchTileR(t: SparseSwitchTiling): number {
  return t.rows * t.warpsR;
}

/** A product of the switch kernel: `out [R, A]` over `K` (tokens `A`, output rows `R`). */
export interface SwitchDims {
  A: number;
  R: number;
  K: number;
}

/**
 * Whether the switch kernel can run a product with this tiling (it has no bounds checks).
 *
 * @param t The tiling.
 * @param dims The product.
 * @returns `A`, `R` and `K` whole numbers of the tiling's tokens, rows and k slice.
 */
export function switchTilingFits(t: SparseSwitchTiling, dims: SwitchDims): boolean {
  const { A, R, K } = dims;
  return A % switchTileA(t) === 0 && R % switchTileR(t) === 0 && K % (4 * t.groups) === 0;
}

/** A tiling's name in result tables: `t{threadM}r{rows}w{warpsR}x{warpsA}g{groups}`. */
export function switchTilingName(t: SparseSwitchTiling): string {
  return `t${t.threadM}r${t.rows}w${t.warpsR}x${t.warpsA}g${t.groups}`;
}

/**
 * Records one product of a {@linkcode matmulSparseSwitchSpec} kernel: `out [R, A]` over `K`, on the
 * tiling's grid `[A / tileA, R / tileR]`.
 *
 * @param rt The runtime.
 * @param spec The kernel, built for `t`.
 * @param t The tiling.
 * @param buffers `x`, `wv`, `wc`, `out` (`x`, `w`, `out` in dense mode).
 * @param dims The product.
 */
export function dispatchSparseSwitch(
  rt: GpuRuntime,
  spec: KernelSpec,
  t: SparseSwitchTiling,
  buffers: readonly GPUBuffer[],
  dims: SwitchDims,
): void {
  const { A, R, K } = dims;
  rt.dispatch(
    spec,
    buffers,
    [A / switchTileA(t), R / switchTileR(t)],
    new Uint32Array([A, R, K, 0]),
  );
}

/**
 * The kernel (grid `[A / tileA, rows / tileR]`). Bindings: `x`, `wv`, `wc` (absent in dense
 * mode), `out`, uniform `{ A, R, K }`.
 *
 * @param t The tiling.
 * @param xKMajor X is stored `[K, A]`.
 * @param mode `"switch"`, `"select"` or `"gather"` (2:4 compressed W, {@linkcode Pick24}) or
 * `"dense"` (the control).
 * @returns The kernel.
 * @throws {RangeError} If the tiling is inconsistent.
 */
export function matmulSparseSwitchSpec(
  t: SparseSwitchTiling,
  xKMajor: boolean,
  mode: Pick24 | "dense" = "switch",
): KernelSpec {
  const { threadM: TM, rows: R, warpsR: WR, warpsA: WA, groups: GS } = t;
  const threads = 32 * WR * WA;
  const BA = switchTileA(t), BR = switchTileR(t), BA4 = BA / 4, TM4 = TM / 4, BK = 4 * GS;
  const dense = mode === "dense";
  const wPerGroup = dense ? BR : BR / 2; // vec4 of W per group
  const xVec = BA * BK / 4, wVec = GS * wPerGroup, cWords = GS * BR / 8;
  if (
    TM % 4 !== 0 || R % 8 !== 0 || threads > 1024 || xVec % threads !== 0 || cWords > threads
  ) {
    throw new RangeError(
      `Cannot build the 2:4 switch matmul kernel: inconsistent tiling ${JSON.stringify(t)}`,
    );
  }
  const key = `matmul-sparse-switch-${mode}-${xKMajor ? "k" : "a"}-t${TM}r${R}w${WR}x${WA}g${GS}`;
  const xSize = BK * BA4, wSize = wVec, cSize = cWords;

  const decl: string[] = [], load: string[] = [], store: string[] = [];
  for (let i = 0; i < xVec / threads; i++) {
    const idx = `(lid + ${i * threads}u)`;
    decl.push(`var rx${i} = vec4<f32>(0.0);`);
    if (xKMajor) { // [K, A]: a vec4 is 4 tokens of one k
      const q = `(${idx} % ${BA4}u)`, kk = `(${idx} / ${BA4}u)`;
      load.push(`rx${i} = x[(k0 + ${kk}) * p.A / 4u + a0 / 4u + ${q}];`);
      store.push(`Xs[xb + ${kk} * ${BA4}u + ${q}] = rx${i};`);
    } else { // [A, K]: 4 consecutive k of one token
      const q = `(${idx} % ${GS}u)`, aa = `(${idx} / ${GS}u)`;
      load.push(`rx${i} = x[(a0 + ${aa}) * p.K / 4u + k0 / 4u + ${q}];`);
      for (let j = 0; j < 4; j++) {
        store.push(
          `Xs[xb + (4u * ${q} + ${j}u) * ${BA4}u + ${aa} / 4u][${aa} % 4u] = rx${i}.${COMP[j]};`,
        );
      }
    }
  }
  // W slice: groups g0/4 .. + GS of the block's rows, group-major.
  const wRow = dense ? "p.R" : "p.R / 2u";
  for (let i = 0; i < Math.ceil(wVec / threads); i++) {
    const idx = `(lid + ${i * threads}u)`;
    // A guard only where the slice does not share evenly (small test tilings).
    const guard = (i + 1) * threads > wVec ? `if (${idx} < ${wVec}u) ` : "";
    decl.push(`var rw${i} = vec4<f32>(0.0);`);
    const q = `(${idx} % ${wPerGroup}u)`, g = `(${idx} / ${wPerGroup}u)`;
    load.push(
      `${guard}{ rw${i} = wv[(k0 / 4u + ${g}) * ${wRow} + r0 / ${dense ? 1 : 2}u + ${q}]; }`,
    );
    store.push(`${guard}{ Ws[wb + ${idx}] = rw${i}; }`);
  }
  if (!dense) {
    decl.push(`var rc = 0u;`);
    load.push(
      `if (lid < ${cWords}u) { rc = wc[(k0 / 4u + lid / ${
        BR / 8
      }u) * (p.R / 8u) + r0 / 8u + lid % ${BR / 8}u]; }`,
    );
    store.push(`if (lid < ${cWords}u) { Cs[cb + lid] = rc; }`);
  }

  const acc: string[] = [], inner: string[] = [], out: string[] = [];
  const gather = mode === "gather"; // activations read per row: none held in registers
  for (let q = 0; q < TM4; q++) {
    for (let r = 0; r < R; r++) acc.push(`var acc_${q}_${r} = vec4<f32>(0.0);`);
  }
  for (let g = 0; g < GS; g++) {
    inner.push(`{`);
    for (let kk = 0; kk < 4 && !gather; kk++) {
      for (let q = 0; q < TM4; q++) {
        inner.push(`let x${kk}_${q} = Xs[xc + ${(4 * g + kk) * BA4 + q * 32}u + ax];`);
      }
    }
    if (dense) {
      for (let r = 0; r < R; r++) {
        inner.push(`let w${r} = Ws[wc0 + ${g * wPerGroup}u + wr * ${R}u + ${r}u];`);
        for (let q = 0; q < TM4; q++) {
          for (let kk = 0; kk < 4; kk++) {
            inner.push(
              `acc_${q}_${r} = fma(x${kk}_${q}, vec4<f32>(w${r}.${COMP[kk]}), acc_${q}_${r});`,
            );
          }
        }
      }
    } else {
      for (let w = 0; w < R / 8; w++) {
        inner.push(`let c${w} = Cs[cc + ${g * BR / 8}u + wr * ${R / 8}u + ${w}u];`);
      }
      for (let rp = 0; rp < R / 2; rp++) {
        inner.push(`let v${rp} = Ws[wc0 + ${g * wPerGroup}u + wr * ${R / 2}u + ${rp}u];`);
      }
      for (let r = 0; r < R; r++) {
        inner.push(...pickRow24(mode, {
          code: `((c${r >> 3} >> ${4 * (r & 7)}u) & 15u)`,
          v0: `v${r >> 1}.${COMP[2 * (r & 1)]}`,
          v1: `v${r >> 1}.${COMP[2 * (r & 1) + 1]}`,
          quads: TM4,
          x: (k, q) => `x${k}_${q}`,
          xAt: (k, q) => `Xs[xc + (${4 * g}u + ${k}) * ${BA4}u + ${q * 32}u + ax]`,
          acc: (q) => `acc_${q}_${r}`,
        }));
      }
    }
    inner.push(`}`);
  }
  for (let q = 0; q < TM4; q++) {
    for (let r = 0; r < R; r++) {
      out.push(`out[(row0 + ${r}u) * p.A / 4u + a0 / 4u + ${q * 32}u + ax] = acc_${q}_${r};`);
    }
  }
  const code = `struct Params { A: u32, R: u32, K: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> wv: array<vec4<f32>>;
${dense ? "" : "@group(0) @binding(2) var<storage, read> wc: array<u32>;"}
@group(0) @binding(${dense ? 2 : 3}) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(${dense ? 3 : 4}) var<uniform> p: Params;
var<workgroup> Xs: array<vec4<f32>, ${2 * xSize}>;
var<workgroup> Ws: array<vec4<f32>, ${2 * wSize}>;
${dense ? "" : `var<workgroup> Cs: array<u32, ${2 * cSize}>;`}

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let warp = lid / 32u;
  let wr = ${
    WR === 1
      ? "0u; // one row block: rows, codes and W reads provably workgroup-uniform"
      : `warp / ${WA}u;`
  }
  let ax = (warp % ${WA}u) * ${TM4 * 32}u + lid % 32u;
  let a0 = wid.x * ${BA}u;
  let r0 = wid.y * ${BR}u;
  ${acc.join("\n  ")}
  ${
    doubleBufferedLoop({
      arrays: [
        { storeBase: "xb", computeBase: "xc", size: xSize },
        { storeBase: "wb", computeBase: "wc0", size: wSize },
        ...(dense ? [] : [{ storeBase: "cb", computeBase: "cc", size: cSize }]),
      ],
      registers: decl,
      load,
      store,
      inner,
      step: BK,
    })
  }
  let row0 = r0 + wr * ${R}u;
  ${out.join("\n  ")}
}
`;
  return { key, code };
}

/**
 * Packs a 2:4 matrix `w [rows, K]` (at most two non-zeros per group of four along k) into the
 * switch kernel's layout: `wv` and `wc` (see the module notes). A group with fewer than two
 * non-zeros keeps zeros at the lowest free positions.
 *
 * @param w The matrix, row-major.
 * @param rows Its rows (multiple of 8).
 * @param k Its columns (multiple of 4).
 * @returns The two arrays.
 * @throws {RangeError} If a group holds more than two non-zeros or a size is not a multiple.
 */
export function packSwitch24(
  w: Float32Array,
  rows: number,
  k: number,
): { wv: Float32Array; wc: Uint32Array } {
  if (rows % 8 !== 0 || k % 4 !== 0 || w.length !== rows * k) {
    throw new RangeError(
      `Cannot pack for the 2:4 switch kernel: need rows % 8 = 0 and K % 4 = 0, got ${rows}×${k}`,
    );
  }
  const groups = k / 4;
  const wv = new Float32Array(groups * rows * 2), wc = new Uint32Array(groups * rows / 8);
  for (let j = 0; j < rows; j++) {
    for (let g = 0; g < groups; g++) {
      const at: number[] = [];
      for (let i = 0; i < 4; i++) if (w[j * k + 4 * g + i] !== 0) at.push(i);
      if (at.length > 2) {
        throw new RangeError(
          `Cannot pack for the 2:4 switch kernel: row ${j}, group ${g} has ${at.length} non-zeros`,
        );
      }
      for (let i = 0; at.length < 2; i++) if (!at.includes(i)) at.push(i);
      at.sort((x, y) => x - y);
      wv[(g * rows + j) * 2] = w[j * k + 4 * g + at[0]];
      wv[(g * rows + j) * 2 + 1] = w[j * k + 4 * g + at[1]];
      wc[(g * rows + j) >> 3] |= (at[0] | (at[1] << 2)) << (4 * (j & 7));
    }
  }
  return { wv, wc };
}

/**
 * Lays a matrix `w [rows, K]` out for the kernel's dense mode (the same-structure control): `vec4`
 * `[K/4, rows]`, each group's four values.
 *
 * @param w The matrix, row-major.
 * @param rows Its rows.
 * @param k Its columns (multiple of 4).
 * @returns The array.
 * @throws {RangeError} If `k` is not a multiple of 4 or `w` is not `rows × k`.
 */
export function packSwitchDense(w: Float32Array, rows: number, k: number): Float32Array {
  if (k % 4 !== 0 || w.length !== rows * k) {
    throw new RangeError(
      `Cannot lay out for the switch kernel's dense mode: need K % 4 = 0 and ${rows}×${k} values, got K = ${k} and ${w.length} values`,
    );
  }
  const out = new Float32Array(rows * k);
  for (let j = 0; j < rows; j++) {
    for (let kk = 0; kk < k; kk++) out[((kk >> 2) * rows + j) * 4 + (kk & 3)] = w[j * k + kk];
  }
  return out;
}
