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
 * Accumulation is float32 in ascending k per output, like every matmul of the backend.
 *
 * @module
 */

import type { KernelSpec } from "../runtime.ts";
import type { MatmulDims } from "./matmul.ts";

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
 * The wide kernel for one transpose combination (grid `[N/tileN, M/tileM, B]`). Bindings: `a`,
 * `b`, `c` (`vec4` arrays), uniform `{ M, N, K, batch }`.
 *
 * @param transA A is stored `[K, M]`.
 * @param transB B is stored `[N, K]`.
 * @param t The tiling.
 * @returns The kernel; its key names the transposes and the tiling.
 * @throws {RangeError} If the tiling is inconsistent.
 */
export function matmulWideSpec(transA: boolean, transB: boolean, t: WideTiling): KernelSpec {
  const threads = wideThreads(t);
  const { tileM: BM, tileN: BN, tileK: BK, threadM: TM, threadN: TN } = t;
  const BM4 = BM / 4, BN4 = BN / 4, BK4 = BK / 4, TN4 = TN / 4, TM4 = TM / 4;
  const threadsN = BN / TN;
  const aSize = BK * BM4, bSize = BK * BN4;
  const key = `matmul-wide-${transA ? "t" : "n"}${transB ? "t" : "n"}-${wideTilingName(t)}`;

  // Staging: each thread loads its share of a slice into registers (vec4 global loads) and
  // stores it into the `buf` half of As/Bs.
  const decl: string[] = [], load: string[] = [], store: string[] = [];
  const scatter = (tile: string, base: string, width4: number, kq: string, rc: string, v: string) =>
    [0, 1, 2, 3].map((j) =>
      `${tile}[${base} + (4u * ${kq} + ${j}u) * ${width4}u + ${rc} / 4u][${rc} % 4u] = ${v}.${
        COMP[j]
      };`
    ).join(" ");
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
      out.push(
        `c[cOff + (row0 + ${r}u) * p.N / 4u + n0 / 4u + ${c * threadsN}u + tx] = acc_${r}_${c};`,
      );
    }
  }
  const code = `struct Params { M: u32, N: u32, K: u32, batch: u32 }
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> As: array<vec4<f32>, ${2 * aSize}>;
var<workgroup> Bs: array<vec4<f32>, ${2 * bSize}>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.y * ${BM}u;
  let n0 = wid.x * ${BN}u;
  let aOff = wid.z * p.M * p.K / 4u;
  let bOff = wid.z * p.K * p.N / 4u;
  let cOff = wid.z * p.M * p.N / 4u;
  let tx = lid % ${threadsN}u;
  let ty = lid / ${threadsN}u;
  ${acc.join("\n  ")}
  ${decl.join("\n  ")}
  var k0 = 0u;
  ${load.join("\n  ")}
  {
    let ab = 0u;
    let bb = 0u;
    ${store.join("\n    ")}
  }
  workgroupBarrier();
  var buf = 0u;
  loop {
    let ac = buf * ${aSize}u;
    let bc = buf * ${bSize}u;
    let more = k0 + ${BK}u < p.K;
    if (more) {
      k0 += ${BK}u;
      ${load.join("\n      ")}
    }
    ${inner.join("\n    ")}
    if (!more) { break; }
    buf = 1u - buf;
    {
      let ab = buf * ${aSize}u;
      let bb = buf * ${bSize}u;
      ${store.join("\n      ")}
    }
    workgroupBarrier();
  }
  let row0 = m0 + ty * ${TM}u;
  ${out.join("\n  ")}
}
`;
  return { key, code };
}
