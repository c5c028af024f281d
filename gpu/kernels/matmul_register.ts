/**
 * Register dense matmul (for software adapters such as llvmpipe): no workgroup memory; each thread
 * computes a `threadM × threadN` block straight from storage, one `vec4` of A and one of B per
 * four rows/columns and K step, both operands read K-major (an operand stored otherwise is first
 * repacked by the pack kernel here). On a CPU-emulated GPU a storage load costs about 30 `vec4`
 * FMAs, so the most arithmetic per load wins; on a discrete GPU it would be slow. SPEC §8.3.
 *
 * @module
 */

import { type GpuRuntime, grid1d, type KernelSpec } from "../runtime.ts";
import {
  assertBlocking,
  type MatmulEncoder,
  type MatmulRegisterBlocking,
  registerGroups,
} from "./_matmul_shared.ts";
import { cachedSpec } from "./_sparse.ts";
import { wgslBindings } from "./_wgsl.ts";

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
  return cachedSpec(key, () => {
    assertBlocking(blocking, "register");
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
    const code = `${
      wgslBindings("M: u32, N: u32, K: u32, lda: u32, ldb: u32", [
        "read A4: array<vec4<f32>>",
        "read B4: array<vec4<f32>>",
        "read_write c: array<f32>",
      ])
    }

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
    return code;
  });
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
  return cachedSpec(key, () => {
    const src = kMajor ? "(b * p.K + k) * p.rows + j" : "(b * p.rows + j) * p.K + k";
    const code = `${
      wgslBindings("count: u32, rows: u32, K: u32, ld: u32", [
        "read src: array<f32>",
        "read_write dst: array<f32>",
      ])
    }

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
    return code;
  });
}

/** Records a K-major, `vec4`-aligned copy of an operand (see {@linkcode matmulPackSpec}). */
export function encodePack(
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
 * Records the storage-fed register product of `a` and `b` into `c`. A K-major operand (`[K, M]`,
 * i.e. transA; `[K, N]`, i.e. not transB) with `vec4`-aligned rows is used in place; anything else
 * is repacked first.
 */
export const encodeRegisterMatmul: MatmulEncoder<MatmulRegisterBlocking> = (
  rt,
  a,
  b,
  c,
  dims,
  blocking,
) => {
  const { batch, m, n, k } = dims;
  const groups = registerGroups(m, n, blocking);
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
};
