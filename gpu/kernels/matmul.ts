/**
 * Dense fp32 matrix products `C = op(A)·op(B)`, 2-D and batched, for all four transpose
 * combinations — the hot operation of training.
 *
 * Two versions live side by side (the kernel zoo of llm.c's `dev/cuda`):
 * - **naive**: one thread per output element, a plain loop over K from global memory. The
 *   obviously-correct baseline for tests and benchmarks.
 * - **tiled**: a workgroup computes a `tileM × tileN` block of C; each K slice of `tileK` columns of
 *   A and rows of B is staged in workgroup memory, and each thread accumulates a
 *   `threadM × threadN` register tile. The register tile is code-generated as named `vec4`
 *   accumulators (no dynamically indexed private arrays, which compilers tend to spill to memory).
 *   Bounds are checked on load (zero fill) and on store, so any shape works.
 *
 * - **register** (for software adapters such as llvmpipe): no workgroup memory; each thread
 *   computes a `threadM × threadN` block (default 16×16) straight from global memory, one `vec4`
 *   of A and one of B per four rows/columns and K step. On a CPU-emulated GPU every storage or
 *   workgroup memory load is expensive (measured on llvmpipe: a lane's `vec4` load from a storage
 *   or workgroup array costs about as much as 30 `vec4` FMAs, ten times a uniform-buffer or
 *   private-array load), so the kernel that wins is the one with the most arithmetic per load, not
 *   the one that shares data through workgroup memory. The kernel reads both operands K-major
 *   (`A` as `[K, lda]`, `B` as `[K, ldb]`, rows `vec4`-aligned), so one K step needs
 *   `(threadM + threadN)/4` loads for `threadM·threadN` FMAs; an operand stored otherwise is first
 *   repacked by a small pack kernel (`O(K·(M + N))` work against the product's `O(M·N·K)`), and
 *   every transpose combination shares one pipeline. On a discrete GPU it would be slow
 *   (uncoalesced loads, large register tiles): use it only where the adapter is a CPU.
 *
 * All accumulate in float32 in ascending k order per output (the tiled kernel adds each K slice
 * in order), so results differ from a float64 reference only by float32 rounding:
 * `|error| ≲ K·2^-24·Σ|a||b|`.
 *
 * FLOPs of one call: `2·B·M·N·K`; bytes moved at least `4·B·(M·K + K·N + M·N)`.
 *
 * @module
 */

import { type GpuRuntime, grid1d, type KernelSpec } from "../runtime.ts";
import { dispatchWithFlatTextures, flatTexelWgsl, MAX_FLAT_TEXELS } from "./_flat_texture.ts";

/** Shape and layout of one matrix product. */
export interface MatmulDims {
  /** Number of independent products (1 for 2-D). */
  batch: number;
  /** Rows of `op(A)` and C. */
  m: number;
  /** Columns of `op(B)` and C. */
  n: number;
  /** The reduction length. */
  k: number;
  /** A is stored `[K, M]` (per batch) and used transposed. */
  transA: boolean;
  /** B is stored `[N, K]` (per batch) and used transposed. */
  transB: boolean;
}

/** Tiling of the tiled kernel. */
export interface MatmulTiling {
  /** Rows of C per workgroup (multiple of `threadM`). */
  tileM: number;
  /** Columns of C per workgroup (multiple of `threadN`). */
  tileN: number;
  /** K slice staged in workgroup memory per iteration. */
  tileK: number;
  /** Rows of C per thread (multiple of 4). */
  threadM: number;
  /** Columns of C per thread (multiple of 4). */
  threadN: number;
}

/** 64×64 tiles, 4×4 per thread, 256 threads: suits software adapters and small products. */
export const TILING_64: MatmulTiling = {
  tileM: 64,
  tileN: 64,
  tileK: 16,
  threadM: 4,
  threadN: 4,
};

/** 128×128 tiles, 8×8 per thread, 256 threads: suits large products on discrete GPUs. */
export const TILING_128: MatmulTiling = {
  tileM: 128,
  tileN: 128,
  tileK: 8,
  threadM: 8,
  threadN: 8,
};

const NAIVE_WG = 16;
const MAX_GROUPS = 65535;

// Generated specs by key, so a dispatch does not regenerate its WGSL.
const specCache = new Map<string, KernelSpec>();
function remember(spec: KernelSpec): KernelSpec {
  specCache.set(spec.key, spec);
  return spec;
}

function transKey(d: { transA: boolean; transB: boolean }): string {
  return `${d.transA ? "t" : "n"}${d.transB ? "t" : "n"}`;
}

const PARAMS_STRUCT = `struct Params { M: u32, N: u32, K: u32, batch: u32 }`;
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
  const hit = specCache.get(key);
  if (hit) return hit;
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
  return remember({ key, code });
}

function assertTiling(t: MatmulTiling): number {
  const { tileM, tileN, tileK, threadM, threadN } = t;
  const threads = (tileM / threadM) * (tileN / threadN);
  if (
    threadM % 4 !== 0 || threadN % 4 !== 0 || tileM % threadM !== 0 || tileN % threadN !== 0 ||
    !Number.isInteger(threads) || threads < 1 || (tileM * tileK) % threads !== 0 ||
    (tileN * tileK) % threads !== 0
  ) {
    throw new RangeError(
      `Cannot build the tiled matmul kernel: inconsistent tiling ${JSON.stringify(t)}`,
    );
  }
  return threads;
}

/**
 * Whether a product fills whole tiles, so the tiled kernel can load `vec4`s without bounds checks
 * (its `aligned` specialisation).
 *
 * @param dims The product.
 * @param tiling The tiling.
 * @returns `K > 0`, `M % tileM = 0`, `N % tileN = 0` and `K % tileK = 0`.
 */
export function fillsTiles(dims: MatmulDims, tiling: MatmulTiling): boolean {
  return dims.k > 0 && dims.m % tiling.tileM === 0 && dims.n % tiling.tileN === 0 &&
    dims.k % tiling.tileK === 0;
}

/**
 * The tiled kernel for one transpose combination and tiling (grid `[⌈N/tileN⌉, ⌈M/tileM⌉, B]`).
 *
 * Thread `(tx, ty)` owns rows `ty·threadM …` of the tile and the interleaved column quads
 * `(c·threadsN + tx)·4 …`, so a warp's `vec4` reads of the B slice and its stores of C touch
 * consecutive addresses. Each thread loads its share of the next K slice into registers while
 * the workgroup computes on the current one (one slice of prefetch). The `aligned` specialisation (for products that fill whole tiles, see
 * {@linkcode fillsTiles}) stages the slices with unchecked `vec4` global loads and stores C as
 * `vec4`s; the general one checks every element against the matrix bounds.
 *
 * @param transA Whether A is stored transposed.
 * @param transB Whether B is stored transposed.
 * @param tiling The tile sizes (default {@linkcode TILING_64}).
 * @param aligned Emit the unchecked `vec4` specialisation (default false).
 * @returns The kernel; its key names the transposes, every tile size and the specialisation.
 * @throws {RangeError} If the tiling is inconsistent (thread tile not a multiple of 4, tiles not
 * divisible, or staging loads not evenly shared by the threads).
 */
export function matmulTiledSpec(
  transA: boolean,
  transB: boolean,
  tiling: MatmulTiling = TILING_64,
  aligned = false,
): KernelSpec {
  const { tileM: BM, tileN: BN, tileK: BK, threadM: TM, threadN: TN } = tiling;
  const key = `matmul-tiled-${transKey({ transA, transB })}-m${BM}n${BN}k${BK}-t${TM}x${TN}${
    aligned ? "-aligned" : ""
  }`;
  const hit = specCache.get(key);
  if (hit) return hit;
  const threads = assertTiling(tiling);
  if (aligned && (BK % 4 !== 0 || (BM * BK / 4) % threads !== 0 || (BN * BK / 4) % threads !== 0)) {
    throw new RangeError(
      `Cannot build the aligned tiled matmul kernel: ${
        JSON.stringify(tiling)
      } does not share its vec4 loads evenly`,
    );
  }
  const TM4 = TM / 4, TN4 = TN / 4, BM4 = BM / 4, BN4 = BN / 4, BK4 = BK / 4;
  const threadsN = BN / TN;
  const comp = ["x", "y", "z", "w"];

  // Staging of the K slices into As[k][m] and Bs[k][n] (vec4 along m and n), through registers:
  // each thread loads its share of the next slice from global memory while the workgroup
  // computes on the current one. Consecutive threads read consecutive addresses of the stored
  // layout.
  type Slot = { decl: string; load: (k: string) => string; store: string };
  const slots: Slot[] = [];
  const scatter = (tile: string, width4: number, kq: string, rc: string, v: string) =>
    [0, 1, 2, 3].map((j) =>
      `${tile}[(4u * ${kq} + ${j}u) * ${width4}u + ${rc} / 4u][${rc} % 4u] = ${v}.${comp[j]};`
    ).join(" ");
  if (!aligned) {
    for (let i = 0; i < (BM * BK) / threads; i++) {
      const idx = `(lid + ${i * threads}u)`;
      const [kk, mm] = transA
        ? [`(${idx} / ${BM}u)`, `(${idx} % ${BM}u)`]
        : [`(${idx} % ${BK}u)`, `(${idx} / ${BK}u)`];
      const src = transA ? "gk * p.M + gm" : "gm * p.K + gk";
      slots.push({
        decl: `  var ra${i} = 0.0;`,
        load: (k) =>
          `{ let gm = m0 + ${mm}; let gk = ${k} + ${kk}; ra${i} = 0.0; ` +
          `if (gm < p.M && gk < p.K) { ra${i} = a[aOff + ${src}]; } }`,
        store: `As[${kk} * ${BM4}u + ${mm} / 4u][${mm} % 4u] = ra${i};`,
      });
    }
    for (let i = 0; i < (BN * BK) / threads; i++) {
      const idx = `(lid + ${i * threads}u)`;
      const [kk, nn] = transB
        ? [`(${idx} % ${BK}u)`, `(${idx} / ${BK}u)`]
        : [`(${idx} / ${BN}u)`, `(${idx} % ${BN}u)`];
      const src = transB ? "gn * p.K + gk" : "gk * p.N + gn";
      slots.push({
        decl: `  var rb${i} = 0.0;`,
        load: (k) =>
          `{ let gn = n0 + ${nn}; let gk = ${k} + ${kk}; rb${i} = 0.0; ` +
          `if (gn < p.N && gk < p.K) { rb${i} = b[bOff + ${src}]; } }`,
        store: `Bs[${kk} * ${BN4}u + ${nn} / 4u][${nn} % 4u] = rb${i};`,
      });
    }
  } else {
    for (let i = 0; i < (BM * BK) / 4 / threads; i++) {
      const idx = `(lid + ${i * threads}u)`;
      const decl = `  var ra${i} = vec4<f32>(0.0);`;
      if (transA) { // [K, M]: a vec4 is 4 consecutive m of one k, As's own layout
        const [q, kk] = [`(${idx} % ${BM4}u)`, `(${idx} / ${BM4}u)`];
        slots.push({
          decl,
          load: (k) => `ra${i} = a[(aOff + (${k} + ${kk}) * p.M + m0) / 4u + ${q}];`,
          store: `As[${kk} * ${BM4}u + ${q}] = ra${i};`,
        });
      } else { // [M, K]: a vec4 is 4 consecutive k of one m, scattered into 4 rows of As
        const [q, mm] = [`(${idx} % ${BK4}u)`, `(${idx} / ${BK4}u)`];
        slots.push({
          decl,
          load: (k) => `ra${i} = a[(aOff + (m0 + ${mm}) * p.K + ${k}) / 4u + ${q}];`,
          store: scatter("As", BM4, q, mm, `ra${i}`),
        });
      }
    }
    for (let i = 0; i < (BN * BK) / 4 / threads; i++) {
      const idx = `(lid + ${i * threads}u)`;
      const decl = `  var rb${i} = vec4<f32>(0.0);`;
      if (!transB) { // [K, N]: Bs's own layout
        const [q, kk] = [`(${idx} % ${BN4}u)`, `(${idx} / ${BN4}u)`];
        slots.push({
          decl,
          load: (k) => `rb${i} = b[(bOff + (${k} + ${kk}) * p.N + n0) / 4u + ${q}];`,
          store: `Bs[${kk} * ${BN4}u + ${q}] = rb${i};`,
        });
      } else { // [N, K]
        const [q, nn] = [`(${idx} % ${BK4}u)`, `(${idx} / ${BK4}u)`];
        slots.push({
          decl,
          load: (k) => `rb${i} = b[(bOff + (n0 + ${nn}) * p.K + ${k}) / 4u + ${q}];`,
          store: scatter("Bs", BN4, q, nn, `rb${i}`),
        });
      }
    }
  }

  // acc_r_c: row r of the thread tile, column quad c (interleaved: quad c·threadsN + tx).
  const accDecl: string[] = [], inner: string[] = [], store: string[] = [];
  for (let r = 0; r < TM; r++) {
    for (let c = 0; c < TN4; c++) accDecl.push(`  var acc_${r}_${c} = vec4<f32>(0.0);`);
  }
  for (let i = 0; i < TM4; i++) {
    inner.push(`      let a${i} = As[kk * ${BM4}u + ty * ${TM4}u + ${i}u];`);
  }
  for (let c = 0; c < TN4; c++) {
    inner.push(`      let b${c} = Bs[kk * ${BN4}u + ${c * threadsN}u + tx];`);
  }
  for (let r = 0; r < TM; r++) {
    for (let c = 0; c < TN4; c++) {
      inner.push(
        `      acc_${r}_${c} = fma(vec4<f32>(a${r >> 2}.${comp[r & 3]}), b${c}, acc_${r}_${c});`,
      );
    }
  }
  for (let r = 0; r < TM; r++) {
    if (aligned) {
      for (let c = 0; c < TN4; c++) {
        store.push(
          `  c[(cOff + (row0 + ${r}u) * p.N + n0) / 4u + ${c * threadsN}u + tx] = acc_${r}_${c};`,
        );
      }
      continue;
    }
    store.push(`  if (row0 + ${r}u < p.M) {`);
    store.push(`    let base = cOff + (row0 + ${r}u) * p.N;`);
    for (let c = 0; c < TN4; c++) {
      store.push(`    let col${c} = n0 + (${c * threadsN}u + tx) * 4u;`);
      for (let j = 0; j < 4; j++) {
        store.push(
          `    if (col${c} + ${j}u < p.N) { c[base + col${c} + ${j}u] = acc_${r}_${c}.${
            comp[j]
          }; }`,
        );
      }
    }
    store.push(`  }`);
  }

  const elem = aligned ? "vec4<f32>" : "f32";
  const code = `${PARAMS_STRUCT}
@group(0) @binding(0) var<storage, read> a: array<${elem}>;
@group(0) @binding(1) var<storage, read> b: array<${elem}>;
@group(0) @binding(2) var<storage, read_write> c: array<${elem}>;
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> As: array<vec4<f32>, ${BK * BM4}>;
var<workgroup> Bs: array<vec4<f32>, ${BK * BN4}>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.y * ${BM}u;
  let n0 = wid.x * ${BN}u;
  let batch = wid.z;
  let aOff = batch * p.M * p.K;
  let bOff = batch * p.K * p.N;
  let cOff = batch * p.M * p.N;
  let tx = lid % ${threadsN}u;
  let ty = lid / ${threadsN}u;
${accDecl.join("\n")}
${slots.map((x) => x.decl).join("\n")}
  ${slots.map((x) => x.load("0u")).join("\n  ")}
  for (var k0 = 0u; k0 < p.K; k0 += ${BK}u) {
    ${slots.map((x) => x.store).join("\n    ")}
    workgroupBarrier();
    if (k0 + ${BK}u < p.K) {
      let kn = k0 + ${BK}u;
      ${slots.map((x) => x.load("kn")).join("\n      ")}
    }
    for (var kk = 0u; kk < ${BK}u; kk++) {
${inner.join("\n")}
    }
    workgroupBarrier();
  }
  let row0 = m0 + ty * ${TM}u;
${store.join("\n")}
}
`;
  return remember({ key, code });
}

/** Blocking of the register kernel (see the module notes). */
export interface MatmulRegisterBlocking {
  /** Rows of C per thread (multiple of 4). */
  threadM: number;
  /** Columns of C per thread (multiple of 4). */
  threadN: number;
  /** Threads per workgroup. */
  workgroup: number;
}

/**
 * 16×16 per thread, 64 threads per workgroup: the default. On llvmpipe (2 cores) it compiles in
 * about 1.6 s and runs mid-sized products within ~1.5× of the 32×32 block.
 */
export const REGISTER_16: MatmulRegisterBlocking = { threadM: 16, threadN: 16, workgroup: 64 };

/**
 * 32×32 per thread, 64 threads per workgroup: up to ~1.5× faster than {@linkcode REGISTER_16} on
 * llvmpipe, but its pipeline takes ~13 s to compile (once per process, or once per machine with
 * Mesa's shader cache): for long runs.
 */
export const REGISTER_32: MatmulRegisterBlocking = { threadM: 32, threadN: 32, workgroup: 64 };

/**
 * The register kernel (grid `[⌈tiles/workgroup⌉, B]`, `tiles = ⌈M/threadM⌉·⌈N/threadN⌉`):
 * `C[b] = Σ_k A[b, k, :]ᵀ ⊗ B[b, k, :]` with A stored `[B, K, lda]` and B `[B, K, ldb]` (both
 * `lda`, `ldb` multiples of 4). Loads past a row's end only feed rows and columns that are never
 * stored. Bindings: `A4`, `B4`, `c`, uniform `{ M, N, K, lda, ldb }`.
 *
 * @param blocking Thread block and workgroup size (default {@linkcode REGISTER_16}).
 * @returns The kernel; its key names the blocking.
 * @throws {RangeError} If the thread block is not made of multiples of 4 or the workgroup is empty.
 */
export function matmulRegisterSpec(blocking: MatmulRegisterBlocking = REGISTER_16): KernelSpec {
  const { threadM: TM, threadN: TN, workgroup: WG } = blocking;
  const key = `matmul-register-t${TM}x${TN}-w${WG}`;
  const hit = specCache.get(key);
  if (hit) return hit;
  if (TM % 4 !== 0 || TN % 4 !== 0 || TM < 4 || TN < 4 || !(WG >= 1) || !Number.isInteger(WG)) {
    throw new RangeError(
      `Cannot build the register matmul kernel: inconsistent blocking ${JSON.stringify(blocking)}`,
    );
  }
  const comp = ["x", "y", "z", "w"];
  const body: string[] = [], decl: string[] = [], store: string[] = [];
  for (let r4 = 0; r4 < TM / 4; r4++) {
    body.push(`let a${r4} = A4[aRow + ${r4}u];`);
  }
  for (let c4 = 0; c4 < TN / 4; c4++) {
    body.push(`let b${c4} = B4[bRow + ${c4}u];`);
  }
  for (let r = 0; r < TM; r++) {
    for (let c4 = 0; c4 < TN / 4; c4++) {
      decl.push(`var acc${r}_${c4} = vec4<f32>(0.0);`);
      body.push(
        `acc${r}_${c4} = fma(vec4<f32>(a${r >> 2}.${comp[r & 3]}), b${c4}, acc${r}_${c4});`,
      );
    }
  }
  for (let r = 0; r < TM; r++) {
    store.push(`if (row0 + ${r}u < p.M) {`);
    store.push(`  let base = cOff + (row0 + ${r}u) * p.N + col0;`);
    for (let c = 0; c < TN; c++) {
      store.push(
        `  if (col0 + ${c}u < p.N) { c[base + ${c}u] = acc${r}_${c >> 2}.${comp[c & 3]}; }`,
      );
    }
    store.push(`}`);
  }
  const code = `struct Params { M: u32, N: u32, K: u32, lda: u32, ldb: u32 }
@group(0) @binding(0) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> B4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let tilesN = (p.N + ${TN - 1}u) / ${TN}u;
  let tile = gid.x;
  let batch = gid.y;
  if (tile >= tilesN * ((p.M + ${TM - 1}u) / ${TM}u)) { return; }
  let row0 = (tile / tilesN) * ${TM}u;
  let col0 = (tile % tilesN) * ${TN}u;
  let cOff = batch * p.M * p.N;
  ${decl.join("\n  ")}
  for (var k = 0u; k < p.K; k++) {
    let aRow = ((batch * p.K + k) * p.lda + row0) / 4u;
    let bRow = ((batch * p.K + k) * p.ldb + col0) / 4u;
    ${body.join("\n    ")}
  }
  ${store.join("\n  ")}
}
`;
  return remember({ key, code });
}

/**
 * The pack kernel of the register matmul: writes the K-major copy `dst[b, k, j]`
 * (`j < ld`, zero for `j ≥ rows`) of a logical `[rows, K]` operand whose element `(j, k)` is at
 * `src[b·rows·K + k·rows + j]` (`kMajor`) or `src[b·rows·K + j·K + k]`. Bindings: `src`, `dst`,
 * uniform `{ count, rows, K, ld }` (`count = B·K·ld`).
 *
 * @param kMajor Whether the source is already K-major (only the row stride changes).
 * @returns The kernel, key `matmul-pack-{kmajor|jmajor}`.
 */
export function matmulPackSpec(kMajor: boolean): KernelSpec {
  const key = `matmul-pack-${kMajor ? "kmajor" : "jmajor"}`;
  const hit = specCache.get(key);
  if (hit) return hit;
  const src = kMajor ? "(b * p.K + k) * p.rows + j" : "(b * p.rows + j) * p.K + k";
  const code = `struct Params { count: u32, rows: u32, K: u32, ld: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (o >= p.count) { return; }
  let j = o % p.ld;
  let q = o / p.ld;
  let k = q % p.K;
  let b = q / p.K;
  var v = 0.0;
  if (j < p.rows) { v = src[${src}]; }
  dst[o] = v;
}
`;
  return remember({ key, code });
}

/** Records a K-major, `vec4`-aligned copy of an operand (see {@linkcode matmulPackSpec}). */
function encodePack(
  rt: GpuRuntime,
  src: GPUBuffer,
  batch: number,
  rows: number,
  k: number,
  kMajor: boolean,
): { buffer: GPUBuffer; ld: number } {
  const ld = Math.ceil(rows / 4) * 4;
  const count = batch * k * ld;
  const dst = rt.alloc(4 * count);
  if (count > 0) {
    rt.dispatch(
      matmulPackSpec(kMajor),
      [src, dst],
      grid1d(Math.ceil(count / 256)),
      new Uint32Array([count, rows, k, ld]),
    );
  }
  return { buffer: dst, ld };
}

/**
 * How an operand of the texture-fed register kernel is stored: `"k"` K-major (`[B, K, ld]`, four
 * rows/columns of C per texel), `"j"` row-major in its own rows (`[B, rows, K]`, four consecutive
 * k per texel).
 */
export type MatmulOperandLayout = "k" | "j";

/**
 * The texture-fed register kernel (grid `[⌈tiles/workgroup⌉, B]`, `tiles = ⌈M/threadM⌉·⌈N/threadN⌉`)
 * for the software adapter: each thread accumulates a `threadM × threadN` block of C in registers,
 * as the storage-fed {@linkcode matmulRegisterSpec} does, but reads both operands with
 * `textureLoad` from `rgba32float` textures that hold the operands' bytes unchanged (see
 * {@linkcode MatmulOperandLayout} and `_flat_texture.ts`). On llvmpipe a texel fetch costs about an eighth of a storage
 * `vec4` load (a storage load runs a per-lane loop with a bounds check per component; a texel
 * fetch is one vector gather), which makes the FMAs, not the loads, the larger cost.
 *
 * Each output is accumulated in ascending k with one `fma` per product, whatever the layouts.
 * Bindings: `At`, `Bt` (textures), `c`, uniform `{ M, N, K, tilesN, tilesM, aLd4, bLd4, aBatch4,
 * bBatch4 }` (`ld4`: texels per K-row of a `"k"` operand or per row of a `"j"` one; `batch4`:
 * texels per batch). Rows and columns past M and N read whatever lies there and are never stored.
 *
 * @param aLayout How A is stored.
 * @param bLayout How B is stored.
 * @param blocking Thread block and workgroup size.
 * @param vec4Store Store C as `vec4`s (needs `N % 4 = 0`); otherwise element by element.
 * @returns The kernel; its key names the layouts, the blocking and the store width.
 * @throws {RangeError} If the thread block is not made of multiples of 4 or the workgroup is empty.
 */
export function matmulTextureSpec(
  aLayout: MatmulOperandLayout,
  bLayout: MatmulOperandLayout,
  blocking: MatmulRegisterBlocking,
  vec4Store: boolean,
  unrollK = false,
): KernelSpec {
  const { threadM: TM, threadN: TN, workgroup: WG } = blocking;
  const key = `matmul-texture-${aLayout}${bLayout}-t${TM}x${TN}-w${WG}-${vec4Store ? "v4" : "s"}${
    unrollK ? "-k4" : ""
  }`;
  const hit = specCache.get(key);
  if (hit) return hit;
  if (TM % 4 !== 0 || TN % 4 !== 0 || TM < 4 || TN < 4 || !(WG >= 1) || !Number.isInteger(WG)) {
    throw new RangeError(
      `Cannot build the texture matmul kernel: inconsistent blocking ${JSON.stringify(blocking)}`,
    );
  }
  const comp = ["x", "y", "z", "w"];
  // One loop iteration covers KB values of k: four when an operand packs four k per texel.
  const KB = aLayout === "j" || bLayout === "j" || unrollK ? 4 : 1;
  const loads: string[] = [];
  const aAt: (r: number, kk: number) => string = aLayout === "k"
    ? (r, kk) => `a${kk}_${r >> 2}.${comp[r & 3]}`
    : (r, kk) => `a_${r}.${comp[kk]}`;
  if (aLayout === "k") {
    for (let kk = 0; kk < KB; kk++) {
      loads.push(`let ak${kk} = aRow + (k + ${kk}u) * p.aLd4;`);
      for (let r4 = 0; r4 < TM / 4; r4++) loads.push(`let a${kk}_${r4} = texA(ak${kk} + ${r4}u);`);
    }
  } else {
    loads.push(`let aj = aRow + k / 4u;`);
    for (let r = 0; r < TM; r++) loads.push(`let a_${r} = texA(aj + ${r}u * p.aLd4);`);
  }
  if (bLayout === "k") {
    for (let kk = 0; kk < KB; kk++) {
      loads.push(`let bk${kk} = bRow + (k + ${kk}u) * p.bLd4;`);
      for (let c4 = 0; c4 < TN / 4; c4++) loads.push(`let b${kk}_${c4} = texB(bk${kk} + ${c4}u);`);
    }
  } else {
    loads.push(`let bj = bRow + k / 4u;`);
    for (let c = 0; c < TN; c++) loads.push(`let b_${c} = texB(bj + ${c}u * p.bLd4);`);
  }
  // Accumulators: vec4 over four columns when B's texels hold four columns, scalars otherwise.
  const decl: string[] = [], fmas: string[] = [];
  const accAt: (r: number, c4: number) => string = bLayout === "k"
    ? (r, c4) => `acc${r}_${c4}`
    : (r, c4) => `vec4<f32>(${[0, 1, 2, 3].map((j) => `acc${r}_${4 * c4 + j}`).join(", ")})`;
  if (bLayout === "k") {
    for (let r = 0; r < TM; r++) {
      for (let c4 = 0; c4 < TN / 4; c4++) decl.push(`var acc${r}_${c4} = vec4<f32>(0.0);`);
    }
  } else {
    for (let r = 0; r < TM; r++) {
      for (let c = 0; c < TN; c++) decl.push(`var acc${r}_${c} = 0.0;`);
    }
  }
  // The KB steps of one accumulator are consecutive, so it stays in a register across them (the
  // block's accumulators far outnumber the registers).
  for (let r = 0; r < TM; r++) {
    if (bLayout === "k") {
      for (let c4 = 0; c4 < TN / 4; c4++) {
        for (let kk = 0; kk < KB; kk++) {
          fmas.push(
            `acc${r}_${c4} = fma(vec4<f32>(${aAt(r, kk)}), b${kk}_${c4}, acc${r}_${c4});`,
          );
        }
      }
    } else {
      for (let c = 0; c < TN; c++) {
        for (let kk = 0; kk < KB; kk++) {
          fmas.push(`acc${r}_${c} = fma(${aAt(r, kk)}, b_${c}.${comp[kk]}, acc${r}_${c});`);
        }
      }
    }
  }
  const store: string[] = [];
  for (let r = 0; r < TM; r++) {
    store.push(`if (row0 + ${r}u < p.M) {`);
    store.push(`  let base = cOff + (row0 + ${r}u) * p.N + col0;`);
    for (let c4 = 0; c4 < TN / 4; c4++) {
      if (vec4Store) {
        store.push(`  if (col0 + ${4 * c4}u < p.N) { c[base / 4u + ${c4}u] = ${accAt(r, c4)}; }`);
        continue;
      }
      store.push(`  { let v = ${accAt(r, c4)};`);
      for (let j = 0; j < 4; j++) {
        const col = 4 * c4 + j;
        store.push(`    if (col0 + ${col}u < p.N) { c[base + ${col}u] = v.${comp[j]}; }`);
      }
      store.push(`  }`);
    }
    store.push(`}`);
  }
  const aRow = aLayout === "k"
    ? "batch * p.aBatch4 + row0 / 4u"
    : "batch * p.aBatch4 + row0 * p.aLd4";
  const bRow = bLayout === "k"
    ? "batch * p.bBatch4 + col0 / 4u"
    : "batch * p.bBatch4 + col0 * p.bLd4";
  const code = `struct Params {
  M: u32, N: u32, K: u32, tilesN: u32, tilesM: u32, aLd4: u32, bLd4: u32, aBatch4: u32,
  bBatch4: u32,
}
@group(0) @binding(0) var At: texture_2d<f32>;
@group(0) @binding(1) var Bt: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<${vec4Store ? "vec4<f32>" : "f32"}>;
@group(0) @binding(3) var<uniform> p: Params;

${flatTexelWgsl("texA", "At")}
${flatTexelWgsl("texB", "Bt")}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let tile = gid.x;
  let batch = gid.y;
  if (tile >= p.tilesN * p.tilesM) { return; }
  let row0 = (tile / p.tilesN) * ${TM}u;
  let col0 = (tile % p.tilesN) * ${TN}u;
  let aRow = ${aRow};
  let bRow = ${bRow};
  let cOff = batch * p.M * p.N;
  ${decl.join("\n  ")}
  for (var k = 0u; k < p.K; k += ${KB}u) {
    ${loads.join("\n    ")}
    ${fmas.join("\n    ")}
  }
  ${store.join("\n  ")}
}
`;
  return remember({ key, code });
}

/**
 * 16×16 per thread, 16 threads per workgroup: the texture-fed kernel's blocking for small and
 * batched products (compiles in ~0.6 s per layout on llvmpipe, 2 cores).
 */
export const TEXTURE_16: MatmulRegisterBlocking = { threadM: 16, threadN: 16, workgroup: 16 };

/**
 * 32×32 per thread, 16 threads per workgroup: 1.15–1.4× faster than {@linkcode TEXTURE_16} on
 * products of 2^23 multiply-adds or more, but ~4 s to compile per layout on llvmpipe (once per
 * machine with Mesa's shader cache).
 */
export const TEXTURE_32: MatmulRegisterBlocking = { threadM: 32, threadN: 32, workgroup: 16 };

/**
 * The texture-fed kernel's blocking for a product: {@linkcode TEXTURE_32} from 2^23 multiply-adds
 * on (the linear layers and the head of the `cpu` GPT-2: 15–40% faster than 16×16 in
 * `experiments/matmul_zoo.ts`) when that still gives 16 blocks or more, {@linkcode TEXTURE_16}
 * otherwise (the batched attention products, where the larger block leaves threads idle, and
 * small products, where its compile time does not pay back).
 *
 * @param dims The product.
 * @returns The blocking.
 */
export function textureBlockingFor(dims: MatmulDims): MatmulRegisterBlocking {
  const tiles32 = dims.batch * Math.ceil(dims.m / 32) * Math.ceil(dims.n / 32);
  return dims.batch * dims.m * dims.n * dims.k >= 2 ** 23 && tiles32 >= 16
    ? TEXTURE_32
    : TEXTURE_16;
}

/** An operand as the texture-fed kernel reads it. */
interface TextureOperand {
  buffer: GPUBuffer;
  layout: MatmulOperandLayout;
  /** Texels per K-row (`"k"`) or per row (`"j"`). */
  ld4: number;
  /** Texels per batch. */
  batch4: number;
  packed: boolean;
}

/**
 * An operand with `rows` rows of C (M for A, N for B) stored K-major (`kMajor`, `[B, K, rows]`) or
 * not (`[B, rows, K]`), in a layout whose texels are whole: used as stored when its rows (K-major)
 * or its K (otherwise) are a multiple of 4, else repacked K-major with rows padded to 4.
 */
function textureOperand(
  rt: GpuRuntime,
  buffer: GPUBuffer,
  batch: number,
  rows: number,
  k: number,
  kMajor: boolean,
): TextureOperand {
  if (kMajor && rows % 4 === 0) {
    return { buffer, layout: "k", ld4: rows / 4, batch4: (k * rows) / 4, packed: false };
  }
  if (!kMajor && k % 4 === 0) {
    return { buffer, layout: "j", ld4: k / 4, batch4: (rows * k) / 4, packed: false };
  }
  const packed = encodePack(rt, buffer, batch, rows, k, kMajor);
  return {
    buffer: packed.buffer,
    layout: "k",
    ld4: packed.ld / 4,
    batch4: (k * packed.ld) / 4,
    packed: true,
  };
}

/**
 * Records `C = op(A)·op(B)` with the texture-fed register kernel: the work recorded so far is
 * submitted, then one command buffer copies both operands into their textures and runs the
 * kernel (`dispatchWithFlatTextures`). Returns `false` (recording nothing) when an operand exceeds
 * the textures' capacity.
 */
function encodeTextureMatmul(
  rt: GpuRuntime,
  a: GPUBuffer,
  b: GPUBuffer,
  c: GPUBuffer,
  dims: MatmulDims,
  blocking: MatmulRegisterBlocking,
): boolean {
  const { batch, m, n, k } = dims;
  // Capacity in texels of either layout, repacked or not.
  if (batch * k * Math.ceil(Math.max(m, n) / 4) > MAX_FLAT_TEXELS) return false;
  const tilesM = Math.ceil(m / blocking.threadM), tilesN = Math.ceil(n / blocking.threadN);
  const groups = Math.ceil((tilesM * tilesN) / blocking.workgroup);
  if (groups > MAX_GROUPS) {
    throw new RangeError(
      `Cannot multiply matrices: ${m}×${n} needs ${groups} workgroups of the register kernel (at most ${MAX_GROUPS})`,
    );
  }
  const A = textureOperand(rt, a, batch, m, k, dims.transA);
  const B = textureOperand(rt, b, batch, n, k, !dims.transB);
  const unrollK = A.layout === "k" && B.layout === "k" && k % 4 === 0;
  dispatchWithFlatTextures(rt, {
    spec: matmulTextureSpec(A.layout, B.layout, blocking, n % 4 === 0, unrollK),
    textures: [
      { buffer: A.buffer, texels: A.batch4 * batch },
      { buffer: B.buffer, texels: B.batch4 * batch },
    ],
    buffers: [c],
    params: new Uint32Array([m, n, k, tilesN, tilesM, A.ld4, B.ld4, A.batch4, B.batch4]),
    workgroups: [groups, batch],
  });
  if (A.packed) rt.free(A.buffer);
  if (B.packed) rt.free(B.buffer);
  return true;
}

/** Options of {@linkcode encodeMatmul}. */
export interface EncodeMatmulOptions {
  /** Kernel version (default `"tiled"`). */
  variant?: "tiled" | "naive" | "register";
  /** Tiling of the tiled kernel (default {@linkcode TILING_64}). */
  tiling?: MatmulTiling;
  /** Blocking of the register kernel (default {@linkcode REGISTER_16}). */
  blocking?: MatmulRegisterBlocking;
  /**
   * Where the register kernel reads its operands: `"texture"` (default; see
   * {@linkcode matmulTextureSpec}, storage where an operand exceeds the textures) or `"storage"`
   * ({@linkcode matmulRegisterSpec}).
   */
  operands?: "texture" | "storage";
}

/**
 * Records `C = op(A)·op(B)` for `dims.batch` stacked products into the runtime's pass.
 *
 * @param rt The runtime.
 * @param a A, `[B, M, K]` (or `[B, K, M]` with `transA`), float32.
 * @param b B, `[B, K, N]` (or `[B, N, K]` with `transB`), float32.
 * @param dims The shape and transposes.
 * @param options Kernel version and tiling.
 * @returns A new pooled buffer holding C `[B, M, N]`; the caller frees it.
 * @throws {RangeError} If a dimension is not a non-negative integer or the batch exceeds the
 * per-dimension workgroup limit.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeMatmul } from "./matmul.ts";
 * const rt = await GpuRuntime.create();
 * const a = rt.upload(new Float32Array([1, 2, 3, 4])); // [[1, 2], [3, 4]]
 * const b = rt.upload(new Float32Array([5, 6, 7, 8])); // [[5, 6], [7, 8]]
 * const dims = { batch: 1, m: 2, n: 2, k: 2, transA: false, transB: true };
 * const c = new Float32Array(await rt.read(encodeMatmul(rt, a, b, dims), 16));
 * rt.destroy();
 * if (c.join() !== "17,23,39,53") throw new Error(`unexpected ${c}`); // a·bᵀ
 * ```
 */
export function encodeMatmul(
  rt: GpuRuntime,
  a: GPUBuffer,
  b: GPUBuffer,
  dims: MatmulDims,
  options: EncodeMatmulOptions = {},
): GPUBuffer {
  const { batch, m, n, k } = dims;
  for (const [name, v] of Object.entries({ batch, m, n, k })) {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(
        `Cannot multiply matrices: ${name} must be a non-negative integer, got ${v}`,
      );
    }
  }
  if (batch > 65535) {
    throw new RangeError(`Cannot multiply matrices: at most 65535 batched products, got ${batch}`);
  }
  const c = rt.alloc(4 * batch * m * n);
  if (batch * m * n === 0) return c;
  const params = new Uint32Array([m, n, k, batch]);
  if (options.variant === "naive") {
    rt.dispatch(matmulNaiveSpec(dims.transA, dims.transB), [a, b, c], [
      Math.ceil(n / NAIVE_WG),
      Math.ceil(m / NAIVE_WG),
      batch,
    ], params);
    return c;
  }
  if (options.variant === "register") {
    if (
      (options.operands ?? "texture") === "texture" &&
      encodeTextureMatmul(rt, a, b, c, dims, options.blocking ?? textureBlockingFor(dims))
    ) {
      return c;
    }
    const blocking = options.blocking ?? REGISTER_16;
    const tiles = Math.ceil(m / blocking.threadM) * Math.ceil(n / blocking.threadN);
    const groups = Math.ceil(tiles / blocking.workgroup);
    if (groups > 65535) {
      throw new RangeError(
        `Cannot multiply matrices: ${m}×${n} needs ${groups} workgroups of the register kernel (at most 65535)`,
      );
    }
    // A K-major ([K, M], i.e. transA) and B K-major ([K, N], i.e. not transB) with vec4-aligned
    // rows are used in place; anything else is repacked first.
    const A = dims.transA && m % 4 === 0
      ? { buffer: a, ld: m }
      : encodePack(rt, a, batch, m, k, dims.transA);
    const B = !dims.transB && n % 4 === 0
      ? { buffer: b, ld: n }
      : encodePack(rt, b, batch, n, k, !dims.transB);
    rt.dispatch(
      matmulRegisterSpec(blocking),
      [A.buffer, B.buffer, c],
      [groups, batch],
      new Uint32Array([m, n, k, A.ld, B.ld]),
    );
    if (A.buffer !== a) rt.free(A.buffer);
    if (B.buffer !== b) rt.free(B.buffer);
    return c;
  }
  const tiling = options.tiling ?? TILING_64;
  const aligned = fillsTiles(dims, tiling);
  rt.dispatch(matmulTiledSpec(dims.transA, dims.transB, tiling, aligned), [a, b, c], [
    Math.ceil(n / tiling.tileN),
    Math.ceil(m / tiling.tileM),
    batch,
  ], params);
  return c;
}
