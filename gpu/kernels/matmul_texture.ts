/**
 * Texture-fed register dense matmul (the software adapter's default): the register kernel's
 * `threadM × threadN` blocks, with both operands read by `textureLoad` from `rgba32float` textures
 * holding their bytes unchanged (`_flat_texture.ts`); on llvmpipe a texel fetch costs about an
 * eighth of a storage `vec4` load. Falls back to storage when an operand exceeds the textures.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { dispatchWithFlatTextures, flatTexelWgsl, MAX_FLAT_TEXELS } from "./_flat_texture.ts";
import {
  assertBlocking,
  type MatmulDims,
  type MatmulEncoder,
  type MatmulRegisterBlocking,
  registerGroups,
} from "./_matmul_shared.ts";
import { cachedSpec } from "./_sparse.ts";
import { encodePack } from "./matmul_register.ts";

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
  return cachedSpec(key, () => {
    assertBlocking(blocking, "texture");
    const comp = ["x", "y", "z", "w"];
    // One loop iteration covers KB values of k: four when an operand packs four k per texel.
    const KB = aLayout === "j" || bLayout === "j" || unrollK ? 4 : 1;
    const loads: string[] = [];
    const aAt: (r: number, kk: number) => string = aLayout === "k"
      ? (r, kk) => `a${kk}_${r >> 2}.${comp[r & 3]}`
      : (r, kk) => `a_${r}.${comp[kk]}`;
    loads.push(...operandLoads("a", aLayout, KB, TM), ...operandLoads("b", bLayout, KB, TN));
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
    return code;
  });
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
export const encodeTextureMatmul: MatmulEncoder<MatmulRegisterBlocking, boolean> = (
  rt,
  a,
  b,
  c,
  dims,
  blocking,
) => {
  const { batch, m, n, k } = dims;
  // Capacity in texels of either layout, repacked or not.
  if (batch * k * Math.ceil(Math.max(m, n) / 4) > MAX_FLAT_TEXELS) return false;
  const tilesM = Math.ceil(m / blocking.threadM), tilesN = Math.ceil(n / blocking.threadN);
  const groups = registerGroups(m, n, blocking);
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
};

/**
 * The texel loads of operand `op` (`"a"` or `"b"`) for one K step: a `k`-major operand loads, for
 * each of the `kb` k values, `lanes / 4` texels of four rows (columns) each; a `j`-major one loads
 * one texel of four k values per row (column), for `lanes` rows (columns).
 */
function operandLoads(
  op: "a" | "b",
  layout: MatmulOperandLayout,
  kb: number,
  lanes: number,
): string[] {
  const tex = op === "a" ? "texA" : "texB", ld = `p.${op}Ld4`;
  const loads: string[] = [];
  if (layout === "k") {
    for (let kk = 0; kk < kb; kk++) {
      loads.push(`let ${op}k${kk} = ${op}Row + (k + ${kk}u) * ${ld};`);
      for (let q = 0; q < lanes / 4; q++) {
        loads.push(`let ${op}${kk}_${q} = ${tex}(${op}k${kk} + ${q}u);`);
      }
    }
  } else {
    loads.push(`let ${op}j = ${op}Row + k / 4u;`);
    for (let i = 0; i < lanes; i++) loads.push(`let ${op}_${i} = ${tex}(${op}j + ${i}u * ${ld});`);
  }
  return loads;
}
