/**
 * Tiled dense matmul: a workgroup computes a `tileM × tileN` block of C; each K slice of `tileK`
 * columns of A and rows of B is staged in workgroup memory, and each thread accumulates a
 * `threadM × threadN` register tile, code-generated as named `vec4` accumulators (no dynamically
 * indexed private arrays, which compilers tend to spill). Bounds are checked on load (zero fill)
 * and store, so any shape works. The discrete-GPU variant of the family (`matmul.ts`).
 *
 * @module
 */

import type { KernelSpec } from "../runtime.ts";
import { type MatmulDims, type MatmulEncoder, PARAMS_STRUCT, transKey } from "./_matmul_shared.ts";
import { cachedSpec } from "./_sparse.ts";

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
  return cachedSpec(key, () => {
    const threads = assertTiling(tiling);
    if (
      aligned && (BK % 4 !== 0 || (BM * BK / 4) % threads !== 0 || (BN * BK / 4) % threads !== 0)
    ) {
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
    // A stages [BK][BM] from `a` ([M, K], or [K, M] when transposed); B stages [BK][BN] from `b`
    // ([K, N], or [N, K] when transposed). `kMajor`: the operand is stored [K, X], Xs's own layout.
    const operands = [
      { op: "a", X: "M", x: "m", BX: BM, kMajor: transA },
      { op: "b", X: "N", x: "n", BX: BN, kMajor: !transB },
    ] as const;
    for (const { op, X, x, BX, kMajor } of operands) {
      const tile = op === "a" ? "As" : "Bs", BX4 = BX / 4;
      if (!aligned) {
        for (let i = 0; i < (BX * BK) / threads; i++) {
          const idx = `(lid + ${i * threads}u)`;
          const [kk, xx] = kMajor
            ? [`(${idx} / ${BX}u)`, `(${idx} % ${BX}u)`]
            : [`(${idx} % ${BK}u)`, `(${idx} / ${BK}u)`];
          const src = kMajor ? `gk * p.${X} + g${x}` : `g${x} * p.K + gk`;
          slots.push({
            decl: `  var r${op}${i} = 0.0;`,
            load: (k) =>
              `{ let g${x} = ${x}0 + ${xx}; let gk = ${k} + ${kk}; r${op}${i} = 0.0; ` +
              `if (g${x} < p.${X} && gk < p.K) { r${op}${i} = ${op}[${op}Off + ${src}]; } }`,
            store: `${tile}[${kk} * ${BX4}u + ${xx} / 4u][${xx} % 4u] = r${op}${i};`,
          });
        }
        continue;
      }
      for (let i = 0; i < (BX * BK) / 4 / threads; i++) {
        const idx = `(lid + ${i * threads}u)`;
        const decl = `  var r${op}${i} = vec4<f32>(0.0);`;
        if (kMajor) { // a vec4 is 4 consecutive x of one k, the tile's own layout
          const [q, kk] = [`(${idx} % ${BX4}u)`, `(${idx} / ${BX4}u)`];
          slots.push({
            decl,
            load: (k) =>
              `r${op}${i} = ${op}[(${op}Off + (${k} + ${kk}) * p.${X} + ${x}0) / 4u + ${q}];`,
            store: `${tile}[${kk} * ${BX4}u + ${q}] = r${op}${i};`,
          });
        } else { // a vec4 is 4 consecutive k of one x, scattered into 4 rows of the tile
          const [q, xx] = [`(${idx} % ${BK4}u)`, `(${idx} / ${BK4}u)`];
          slots.push({
            decl,
            load: (k) =>
              `r${op}${i} = ${op}[(${op}Off + (${x}0 + ${xx}) * p.K + ${k}) / 4u + ${q}];`,
            store: scatter(tile, BX4, q, xx, `r${op}${i}`),
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
    return code;
  });
}

/** Records the tiled product of `a` and `b` into `c` (see {@linkcode matmulTiledSpec}). */
export const encodeTiledMatmul: MatmulEncoder<MatmulTiling> = (rt, a, b, c, dims, tiling) => {
  const { batch, m, n, k } = dims;
  const aligned = fillsTiles(dims, tiling);
  rt.dispatch(matmulTiledSpec(dims.transA, dims.transB, tiling, aligned), [a, b, c], [
    Math.ceil(n / tiling.tileN),
    Math.ceil(m / tiling.tileM),
    batch,
  ], new Uint32Array([m, n, k, batch]));
};
