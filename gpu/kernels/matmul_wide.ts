/**
 * Dense fp32 `C = op(A)·op(B)` for products that fill whole tiles, with wide register tiles and
 * double-buffered workgroup staging: the discrete-GPU variant of the tiled kernel of
 * `matmul.ts`, written for the measured WGSL roofline of the H100 (issue 15: 13.8 FMAs per `vec4`
 * workgroup load is the break-even, so an 8×8 thread tile at 16 FMAs per load sits at it and an
 * 8×16 one at 21.3 leaves the FMA units the only limit).
 *
 * A workgroup computes a `tileM × tileN` block; thread `(tx, ty)` owns rows `ty·threadM …` and the
 * interleaved column quads `c·threadsN + tx`. Each K slice of `tileK` is staged (A as `[k][m]`, B
 * as `[k][n]`, `vec4` along m and n) into one of two buffers while the workgroup computes on the
 * other, so one barrier per slice. The slice loop body is unrolled over `kk` (constant indices).
 * Accumulation is float32 in ascending k per output, like every matmul of the backend. The
 * `checked` specialisation stages with bounds-checked scalar loads (zero fill) and stores with
 * bounds checks, for any shape (the tied head's vocabulary of 50,257); the unchecked one needs
 * whole tiles and moves `vec4`s.
 *
 * @module
 */

import { type GpuRuntime, grid1d, type KernelSpec } from "../runtime.ts";
import { doubleBufferedLoop } from "./_double_buffer.ts";
import type { MatmulDims, MatmulEncoder } from "./_matmul_shared.ts";

/**
 * A triangular structure the caller promises (causal attention), which lets the kernel skip work:
 * `"lower-out"`: only `C[i, j]` with `j ≤ i` are used (tiles wholly above the diagonal are written
 * as zeros; the rest of a diagonal tile holds the products); `"lower-a"`: `op(A)[i, k] = 0` for
 * `k > i` (K slices past a tile's last row are skipped); `"upper-a"`: `op(A)[i, k] = 0` for `k < i`.
 */
export type MatmulTriangular = "lower-out" | "lower-a" | "upper-a";

/** Tiling of the wide kernel. */
export interface WideTiling {
  /** Rows of C per workgroup. */
  tileM: number;
  /** Columns of C per workgroup. */
  tileN: number;
  /** K slice per stage (multiple of 4). */
  tileK: number;
  /** Rows of C per thread (multiple of 4). */
  threadM: number;
  /** Columns of C per thread (multiple of 4). */
  threadN: number;
}

const COMP = ["x", "y", "z", "w"];

/** Threads of a tiling, or a RangeError naming the inconsistency. */
function wideThreads(t: WideTiling): number {
  const { tileM: BM, tileN: BN, tileK: BK, threadM: TM, threadN: TN } = t;
  const threads = (BM / TM) * (BN / TN);
  const ok = TM % 4 === 0 && TN % 4 === 0 && BK % 4 === 0 && BM % TM === 0 && BN % TN === 0 &&
    Number.isInteger(threads) && threads >= 32 && threads <= 1024 &&
    (BM * BK / 4) % threads === 0 && (BN * BK / 4) % threads === 0;
  if (!ok) {
    throw new RangeError(
      `Cannot build the wide matmul kernel: inconsistent tiling ${JSON.stringify(t)}`,
    );
  }
  return threads;
}

/** A short name for a tiling, e.g. `128x128k8t8x8`. */
export function wideTilingName(t: WideTiling): string {
  return `${t.tileM}x${t.tileN}k${t.tileK}t${t.threadM}x${t.threadN}`;
}

/**
 * Whether the wide kernel can run a product with this tiling (it has no bounds checks).
 *
 * @param dims The product.
 * @param t The tiling.
 * @returns Every dimension a whole number of tiles and K > 0.
 */
export function wideFits(dims: MatmulDims, t: WideTiling): boolean {
  return dims.k > 0 && dims.m % t.tileM === 0 && dims.n % t.tileN === 0 && dims.k % t.tileK === 0;
}

/**
 * The wide kernel for one transpose combination (grid `[N/tileN, M/tileM, B·splits]`). Bindings:
 * `a`, `b`, `c` (`[B·splits, M, N]`), uniform `{ M, N, K, splits, kSplit }` ({@linkcode wideParams}).
 *
 * @param transA A is stored `[K, M]`.
 * @param transB B is stored `[N, K]`.
 * @param t The tiling.
 * @returns The kernel; its key names the transposes and the tiling.
 * @throws {RangeError} If the tiling is inconsistent.
 */
export function matmulWideSpec(
  transA: boolean,
  transB: boolean,
  t: WideTiling,
  checked = false,
  triangular?: MatmulTriangular,
): KernelSpec {
  const threads = wideThreads(t);
  const { tileM: BM, tileN: BN, tileK: BK, threadM: TM, threadN: TN } = t;
  const BM4 = BM / 4, BN4 = BN / 4, BK4 = BK / 4, TN4 = TN / 4, TM4 = TM / 4;
  const threadsN = BN / TN;
  const aSize = BK * BM4, bSize = BK * BN4;
  const key = `matmul-wide-${transA ? "t" : "n"}${transB ? "t" : "n"}-${wideTilingName(t)}${
    checked ? "-checked" : ""
  }${triangular ? `-${triangular}` : ""}`;

  // Staging: each thread loads its share of a slice into registers (vec4 global loads) and
  // stores it into the `buf` half of As/Bs.
  const decl: string[] = [], load: string[] = [], store: string[] = [];
  const scatter = (tile: string, base: string, width4: number, kq: string, rc: string, v: string) =>
    [0, 1, 2, 3].map((j) =>
      `${tile}[${base} + (4u * ${kq} + ${j}u) * ${width4}u + ${rc} / 4u][${rc} % 4u] = ${v}.${
        COMP[j]
      };`
    ).join(" ");
  const scalarSlots = (
    reg: string,
    count: number,
    width: number,
    tile: string,
    base: string,
    kFast: boolean,
    src: (rc: string, gk: string) => string,
    rcLimit: string,
    rc0: string,
  ) => {
    for (let i = 0; i < count; i++) {
      const idx = `(lid + ${i * threads}u)`;
      const [kk, rc] = kFast
        ? [`(${idx} % ${BK}u)`, `(${idx} / ${BK}u)`]
        : [`(${idx} / ${width}u)`, `(${idx} % ${width}u)`];
      decl.push(`var ${reg}${i} = 0.0;`);
      load.push(
        `{ let g = ${rc0} + ${rc}; let gk = k0 + ${kk}; ${reg}${i} = 0.0; ` +
          `if (g < ${rcLimit} && gk < p.K) { ${reg}${i} = ${src("g", "gk")}; } }`,
      );
      store.push(`${tile}[${base} + ${kk} * ${width / 4}u + ${rc} / 4u][${rc} % 4u] = ${reg}${i};`);
    }
  };
  if (checked) {
    // Scalar loads with bounds (zero fill): any M, N, K; consecutive threads read consecutive
    // addresses of the stored layout.
    scalarSlots(
      "ra",
      BM * BK / threads,
      BM,
      "As",
      "ab",
      !transA,
      (g, gk) => transA ? `a[aOff + ${gk} * p.M + ${g}]` : `a[aOff + ${g} * p.K + ${gk}]`,
      "p.M",
      "m0",
    );
    scalarSlots(
      "rb",
      BN * BK / threads,
      BN,
      "Bs",
      "bb",
      transB,
      (g, gk) => transB ? `b[bOff + ${g} * p.K + ${gk}]` : `b[bOff + ${gk} * p.N + ${g}]`,
      "p.N",
      "n0",
    );
  } else {
    for (let i = 0; i < BM * BK / 4 / threads; i++) {
      const idx = `(lid + ${i * threads}u)`;
      decl.push(`var ra${i} = vec4<f32>(0.0);`);
      if (transA) { // [K, M]: a vec4 is 4 consecutive m of one k
        const q = `(${idx} % ${BM4}u)`, kk = `(${idx} / ${BM4}u)`;
        load.push(`ra${i} = a[aOff + (k0 + ${kk}) * p.M / 4u + m0 / 4u + ${q}];`);
        store.push(`As[ab + ${kk} * ${BM4}u + ${q}] = ra${i};`);
      } else { // [M, K]: 4 consecutive k of one m
        const q = `(${idx} % ${BK4}u)`, mm = `(${idx} / ${BK4}u)`;
        load.push(`ra${i} = a[aOff + (m0 + ${mm}) * p.K / 4u + k0 / 4u + ${q}];`);
        store.push(scatter("As", "ab", BM4, q, mm, `ra${i}`));
      }
    }
    for (let i = 0; i < BN * BK / 4 / threads; i++) {
      const idx = `(lid + ${i * threads}u)`;
      decl.push(`var rb${i} = vec4<f32>(0.0);`);
      if (!transB) { // [K, N]
        const q = `(${idx} % ${BN4}u)`, kk = `(${idx} / ${BN4}u)`;
        load.push(`rb${i} = b[bOff + (k0 + ${kk}) * p.N / 4u + n0 / 4u + ${q}];`);
        store.push(`Bs[bb + ${kk} * ${BN4}u + ${q}] = rb${i};`);
      } else { // [N, K]
        const q = `(${idx} % ${BK4}u)`, nn = `(${idx} / ${BK4}u)`;
        load.push(`rb${i} = b[bOff + (n0 + ${nn}) * p.K / 4u + k0 / 4u + ${q}];`);
        store.push(scatter("Bs", "bb", BN4, q, nn, `rb${i}`));
      }
    }
  }

  const acc: string[] = [], inner: string[] = [], out: string[] = [];
  for (let r = 0; r < TM; r++) {
    for (let c = 0; c < TN4; c++) acc.push(`var acc_${r}_${c} = vec4<f32>(0.0);`);
  }
  for (let kk = 0; kk < BK; kk++) {
    for (let i = 0; i < TM4; i++) {
      inner.push(`let a${kk}_${i} = As[ac + ${kk * BM4}u + ty * ${TM4}u + ${i}u];`);
    }
    for (let c = 0; c < TN4; c++) {
      inner.push(`let b${kk}_${c} = Bs[bc + ${kk * BN4 + c * threadsN}u + tx];`);
    }
    for (let r = 0; r < TM; r++) {
      for (let c = 0; c < TN4; c++) {
        inner.push(
          `acc_${r}_${c} = fma(vec4<f32>(a${kk}_${r >> 2}.${
            COMP[r & 3]
          }), b${kk}_${c}, acc_${r}_${c});`,
        );
      }
    }
  }
  for (let r = 0; r < TM; r++) {
    for (let c = 0; c < TN4; c++) {
      if (!checked) {
        out.push(
          `c[cOff + (row0 + ${r}u) * p.N / 4u + n0 / 4u + ${c * threadsN}u + tx] = acc_${r}_${c};`,
        );
        continue;
      }
      for (let j = 0; j < 4; j++) {
        out.push(
          `{ let col = n0 + (${c * threadsN}u + tx) * 4u + ${j}u; ` +
            `if (row0 + ${r}u < p.M && col < p.N) { ` +
            `c[cOff + (row0 + ${r}u) * p.N + col] = acc_${r}_${c}.${COMP[j]}; } }`,
        );
      }
    }
  }
  const elem = checked ? "f32" : "vec4<f32>";
  const q = checked ? "" : " / 4u"; // offsets in elements or in vec4s
  const code = `struct Params { M: u32, N: u32, K: u32, splits: u32, kSplit: u32 }
@group(0) @binding(0) var<storage, read> a: array<${elem}>;
@group(0) @binding(1) var<storage, read> b: array<${elem}>;
@group(0) @binding(2) var<storage, read_write> c: array<${elem}>;
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> As: array<vec4<f32>, ${2 * aSize}>;
var<workgroup> Bs: array<vec4<f32>, ${2 * bSize}>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.y * ${BM}u;
  let n0 = wid.x * ${BN}u;
  // wid.z = batch·splits + split: split s sums k in [s·kSplit, min((s+1)·kSplit, K)) into its own
  // partial product (split-K; one split: the product itself).
  let batch = wid.z / p.splits;
  var kBegin = (wid.z % p.splits) * p.kSplit;
  var kEnd = min(kBegin + p.kSplit, p.K);
  ${
    triangular === "lower-a"
      ? `kEnd = min(kEnd, m0 + ${BM}u); // op(A) is 0 right of its diagonal`
      : ""
  }
  ${triangular === "upper-a" ? `kBegin = max(kBegin, m0); // op(A) is 0 left of its diagonal` : ""}
  let aOff = batch * p.M * p.K${q};
  let bOff = batch * p.K * p.N${q};
  let cOff = wid.z * p.M * p.N${q};
  let tx = lid % ${threadsN}u;
  let ty = lid / ${threadsN}u;
  ${acc.join("\n  ")}
  ${
    triangular === "lower-out"
      ? `if (n0 >= m0 + ${BM}u) { // wholly above the diagonal: zeros, no products
    let row0 = m0 + ty * ${TM}u;
    ${out.join("\n    ")}
    return;
  }`
      : ""
  }
  ${
    doubleBufferedLoop({
      arrays: [
        { storeBase: "ab", computeBase: "ac", size: aSize },
        { storeBase: "bb", computeBase: "bc", size: bSize },
      ],
      registers: decl,
      load,
      store,
      inner,
      kBegin: "kBegin",
      kEnd: "kEnd",
      step: BK,
    })
  }
  let row0 = m0 + ty * ${TM}u;
  ${out.join("\n  ")}
}
`;
  return { key, code };
}

/** 128×128 tiles, K slice 16, 8×8 per thread (256 threads): the large-product tiling. */
export const WIDE_128: WideTiling = { tileM: 128, tileN: 128, tileK: 16, threadM: 8, threadN: 8 };
/** 64×128 tiles, K slice 16, 8×8 per thread (128 threads). */
export const WIDE_64X128: WideTiling = { tileM: 64, tileN: 128, tileK: 16, threadM: 8, threadN: 8 };
/** 128×64 tiles, K slice 16, 8×8 per thread (128 threads): N a multiple of 64, not of 128. */
export const WIDE_128X64: WideTiling = { tileM: 128, tileN: 64, tileK: 16, threadM: 8, threadN: 8 };
/** 64×64 tiles, K slice 16, 4×8 per thread (128 threads): narrow or few-tile products. */
export const WIDE_64: WideTiling = { tileM: 64, tileN: 64, tileK: 16, threadM: 4, threadN: 8 };

/** Workgroups that fill an H100 about four times over (132 multiprocessors). */
const FULL_GRID = 528;

/**
 * The tiling for a product: {@linkcode WIDE_128} when it pads C by at most 10% and gives
 * {@linkcode FULL_GRID} workgroups, or at least half of them once split along K
 * ({@linkcode wideSplitFor}); else {@linkcode WIDE_64X128} on the same terms, else
 * {@linkcode WIDE_64}; where that choice needs the bounds-checked kernel, the first of
 * {@linkcode WIDE_128}, {@linkcode WIDE_64X128} and {@linkcode WIDE_128X64} that fits whole tiles
 * on the same terms (a dimension of 1,600 = 25·64). Measured on the H100 (results/device/2026-12-06-h100-gemm-zoo-2.md):
 * 128×128 tiles split along K beat smaller unsplit tiles on every FFN product (1.2–1.3× on the
 * weight gradients); products 64 wide (attention's `P·V`) run 2.4× faster in 64×64 tiles.
 *
 * @param dims The product.
 * @returns The tiling.
 */
export function wideTilingFor(dims: MatmulDims): WideTiling {
  const fills = (t: WideTiling) => {
    const tm = Math.ceil(dims.m / t.tileM), tn = Math.ceil(dims.n / t.tileN);
    const padded = (tm * t.tileM * tn * t.tileN) / Math.max(1, dims.m * dims.n);
    const groups = dims.batch * tm * tn;
    return padded <= 1.1 &&
      (groups >= FULL_GRID || groups * wideSplitFor(dims, t) >= FULL_GRID / 2);
  };
  const chosen = [WIDE_128, WIDE_64X128].find(fills) ?? WIDE_64;
  if (wideFits(dims, chosen)) return chosen;
  // The bounds-checked kernel ran at 44–51% of the FMA rate where whole tiles ran at 70–75% (d =
  // 1,600 on the H100, results/speed/2026-12-06-h100.md): take a tiling of whole tiles if one fills
  // the GPU as well.
  return [WIDE_128, WIDE_64X128, WIDE_128X64].find((t) => wideFits(dims, t) && fills(t)) ??
    chosen;
}

/**
 * The split-K factor for a product: 1, or for products whose tiles underfill the GPU (fewer than
 * {@linkcode FULL_GRID} workgroups, such as the weight gradients `[out, in]` summed over 8,192
 * tokens) enough splits of at least 512 k each to fill it, at most 8, each a whole number of K
 * slices.
 *
 * @param dims The product.
 * @param t The tiling.
 * @returns The number of splits.
 */
export function wideSplitFor(dims: MatmulDims, t: WideTiling): number {
  const groups = dims.batch * Math.ceil(dims.m / t.tileM) * Math.ceil(dims.n / t.tileN);
  let splits = 1;
  // Whole tiles: each split a whole number of K slices. Otherwise (bounds-checked loads) any K,
  // split at multiples of the K slice, and C summed as vec4s.
  const whole = wideFits(dims, t);
  if (!whole && (dims.batch * dims.m * dims.n) % 4 !== 0) return 1;
  while (
    splits < 8 && groups * splits < FULL_GRID && dims.k / (2 * splits) >= 512 &&
    (!whole || dims.k % (2 * splits * t.tileK) === 0)
  ) splits *= 2;
  return splits;
}

/**
 * The sum of the split-K partial products `[B, splits, M·N]` into `C [B, M·N]`, one thread per
 * `vec4`. Uniform `{ len, rowLen, mn4 }`: `vec4`s of C, grid row length, `vec4`s per product.
 */
export function splitSumSpec(splits: number): KernelSpec {
  const terms = Array.from({ length: splits }, (_, s) => `parts[base + ${s}u * p.mn4]`).join(" + ");
  return {
    key: `matmul-wide-split-sum-${splits}`,
    code: `struct Params { len: u32, rowLen: u32, mn4: u32 }
@group(0) @binding(0) var<storage, read> parts: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * p.rowLen) * 256u + lid;
  if (i < p.len) {
    let base = (i / p.mn4) * ${splits}u * p.mn4 + i % p.mn4;
    c[i] = ${terms};
  }
}
`,
  };
}

/** The wide kernel's uniform: `{ M, N, K, splits, kSplit }`. */
export function wideParams(dims: MatmulDims, splits = 1, tileK = 4): Uint32Array {
  // Splits start at multiples of the K slice, so no slice crosses into the next split.
  const kSplit = Math.ceil(dims.k / splits / tileK) * tileK;
  return new Uint32Array([dims.m, dims.n, dims.k, splits, kSplit]);
}

/** A wide product's plan: tiling, bounds checks, split-K factor and grid. */
export interface WidePlan {
  /** The tiling. */
  tiling: WideTiling;
  /** Bounds-checked specialisation (the product does not fill whole tiles). */
  checked: boolean;
  /** Split-K factor (1: none). */
  splits: number;
  /** The promised triangular structure, if any. */
  triangular?: MatmulTriangular;
  /** Workgroups. */
  grid: [number, number, number];
}

/** Options of the wide kernel ({@linkcode encodeWideMatmul}, {@linkcode widePlan}). */
export interface WideOptions {
  /** The tiling (default {@linkcode wideTilingFor}). */
  tiling?: WideTiling;
  /** A triangular structure the caller promises; the kernel skips the work it excludes. */
  triangular?: MatmulTriangular;
}

/**
 * The plan {@linkcode encodeMatmulWide} follows for a product.
 *
 * @param dims The product.
 * @param options The tiling (default {@linkcode wideTilingFor}) and a triangular structure
 * (no split-K then).
 * @returns The plan.
 */
export function widePlan(dims: MatmulDims, options: WideOptions = {}): WidePlan {
  const { tiling = wideTilingFor(dims), triangular } = options;
  const checked = !wideFits(dims, tiling);
  const splits = triangular ? 1 : wideSplitFor(dims, tiling);
  return {
    tiling,
    checked,
    splits,
    triangular,
    grid: [
      Math.ceil(dims.n / tiling.tileN),
      Math.ceil(dims.m / tiling.tileM),
      dims.batch * splits,
    ],
  };
}

/**
 * Records a planned wide product into `c`; a split-K plan writes its partial products into
 * `parts` (at least `4·splits·B·M·N` bytes) and sums them into `c`.
 *
 * @param rt The runtime.
 * @param buffers `[a, b, c]`, and `parts` for a split plan.
 * @param dims The product.
 * @param plan Its plan ({@linkcode widePlan}).
 */
export function dispatchMatmulWide(
  rt: GpuRuntime,
  buffers: { a: GPUBuffer; b: GPUBuffer; c: GPUBuffer; parts?: GPUBuffer },
  dims: MatmulDims,
  plan: WidePlan,
): void {
  const { a, b, c, parts } = buffers;
  const spec = matmulWideSpec(
    dims.transA,
    dims.transB,
    plan.tiling,
    plan.checked,
    plan.triangular,
  );
  if (plan.splits === 1) {
    rt.dispatch(spec, [a, b, c], plan.grid, wideParams(dims));
    return;
  }
  if (!parts) throw new TypeError("Cannot record a split-K wide matmul: no partial-product buffer");
  rt.dispatch(spec, [a, b, parts], plan.grid, wideParams(dims, plan.splits, plan.tiling.tileK));
  const len = dims.batch * dims.m * dims.n / 4, [gx, gy] = grid1d(Math.ceil(len / 256));
  rt.dispatch(
    splitSumSpec(plan.splits),
    [parts, c],
    [gx, gy],
    new Uint32Array([len, gx, dims.m * dims.n / 4]),
  );
}

/**
 * Records `C = op(A)·op(B)` into `c` with the wide kernel: the unchecked `vec4` specialisation
 * where the product fills whole tiles (split along K where {@linkcode wideSplitFor} says so), the
 * checked one otherwise.
 *
 * @param rt The runtime.
 * @param a A, `[B, M, K]` (or `[B, K, M]` with `transA`), float32.
 * @param b B, `[B, K, N]` (or `[B, N, K]` with `transB`), float32.
 * @param c C, `[B, M, N]`.
 * @param dims The shape and transposes (`B ≤ 65535`).
 * @param options Tiling and triangular structure ({@linkcode widePlan}).
 */
export const encodeWideMatmul: MatmulEncoder<WideOptions> = (rt, a, b, c, dims, options) => {
  const { batch, m, n } = dims;
  if (batch * m * n === 0) return;
  const plan = widePlan(dims, options);
  const parts = plan.splits > 1 ? rt.alloc(4 * plan.splits * batch * m * n) : undefined;
  dispatchMatmulWide(rt, { a, b, c, parts }, dims, plan);
  if (parts) rt.free(parts);
};
