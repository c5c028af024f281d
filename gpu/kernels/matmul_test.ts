/**
 * The texture-fed register matmul against the storage-fed one and a float64 product. Both
 * accumulate every output with one `fma` per k in ascending order, so they must agree bit for bit
 * on any adapter; the float64 product checks the common result within float32 rounding
 * (`|error| ≤ (K + 1)·2^-24·Σ_k |a||b|`).
 *
 * @module
 */

import { openTestRuntime } from "../testing.ts";
import {
  encodeMatmul,
  type MatmulDims,
  type MatmulRegisterBlocking,
  TEXTURE_16,
  TEXTURE_32,
  textureBlockingFor,
} from "./matmul.ts";
import { assertProductClose, seededFloats } from "../../reference/testing.ts";

const rt = await openTestRuntime("matmul_test"); // rejects (fails every test) without an adapter

const random = (n: number, seed: number) => seededFloats(n, seed);

/** Runs one product with both operand sources; checks bit equality and the float64 bound. */
async function check(dims: MatmulDims, blocking?: MatmulRegisterBlocking): Promise<void> {
  const { batch, m, n, k, transA, transB } = dims;
  const label = `B=${batch} ${m}×${n}×${k} transA=${transA} transB=${transB}` +
    (blocking ? ` ${blocking.threadM}×${blocking.threadN}/${blocking.workgroup}` : "");
  const a = random(batch * m * k, 7 + m + 3 * k), b = random(batch * k * n, 11 + n + 5 * k);
  const aBuf = rt.upload(a.length > 0 ? a : new Float32Array(1));
  const bBuf = rt.upload(b.length > 0 ? b : new Float32Array(1));
  const outs: Float32Array[] = [];
  for (const operands of ["texture", "storage"] as const) {
    const c = encodeMatmul(rt, aBuf, bBuf, dims, { variant: "register", operands, blocking });
    outs.push(new Float32Array(await rt.read(c, 4 * batch * m * n)));
    rt.free(c);
  }
  rt.free(aBuf);
  rt.free(bBuf);
  const [tex, sto] = outs;
  for (let i = 0; i < tex.length; i++) {
    if (!Object.is(tex[i], sto[i])) {
      throw new Error(`${label}: c[${i}] texture ${tex[i]} ≠ storage ${sto[i]}`);
    }
  }
  for (let q = 0; q < batch; q++) {
    assertProductClose(
      `${label} c[${q}]`,
      tex.subarray(q * m * n, (q + 1) * m * n),
      { rows: m, cols: n, k },
      (i, kk) => a[q * m * k + (transA ? kk * m + i : i * k + kk)],
      (j, kk) => b[q * k * n + (transB ? j * k + kk : kk * n + j)],
    );
  }
}

const TRANSPOSES = [[false, false], [false, true], [true, false], [true, true]] as const;

Deno.test("texture matmul: every layout pair, whole texels, partial blocks", async () => {
  // m, n, k multiples of 4: no repacking; 36 and 20 leave partial 16×16 blocks.
  for (const [transA, transB] of TRANSPOSES) {
    await check({ batch: 1, m: 36, n: 20, k: 12, transA, transB });
  }
});

Deno.test("texture matmul: awkward shapes repack operands and store element by element", async () => {
  // k % 4 ≠ 0 repacks row-major operands; m or n % 4 ≠ 0 repacks K-major ones; n % 4 ≠ 0 takes
  // the element-wise store.
  for (const [m, n, k] of [[1, 1, 1], [3, 5, 7], [17, 33, 9], [5, 3, 130]]) {
    for (const [transA, transB] of TRANSPOSES) {
      await check({ batch: 1, m, n, k, transA, transB });
    }
  }
});

Deno.test("texture matmul: batched, K = 0, operands spanning several texture rows", async () => {
  for (const [transA, transB] of TRANSPOSES) {
    await check({ batch: 3, m: 12, n: 8, k: 20, transA, transB });
    await check({ batch: 2, m: 4, n: 8, k: 0, transA, transB });
  }
  // 100·1000/4 = 25000 texels: three full 8192-texel rows and a partial one.
  await check({ batch: 1, m: 100, n: 8, k: 1000, transA: false, transB: false });
  await check({ batch: 1, m: 8, n: 100, k: 1000, transA: true, transB: true });
});

Deno.test("texture matmul: other blockings", async () => {
  await check({ batch: 2, m: 40, n: 24, k: 16, transA: false, transB: true }, {
    threadM: 8,
    threadN: 4,
    workgroup: 3,
  });
  await check({ batch: 1, m: 70, n: 68, k: 36, transA: false, transB: false }, TEXTURE_32);
});

Deno.test("texture matmul: blocking by product size", () => {
  const dims = (m: number, n: number, k: number) => ({
    batch: 1,
    m,
    n,
    k,
    transA: false,
    transB: true,
  });
  const cases: [MatmulDims, MatmulRegisterBlocking][] = [
    [dims(512, 4096, 128), TEXTURE_32], // the GPT-2 head, 2^28 multiply-adds
    [dims(512, 128, 4096), TEXTURE_32], // its input gradient: 64 blocks of 32×32
    [dims(512, 128, 128), TEXTURE_32], // an attention projection: 2^23
    [dims(256, 128, 128), TEXTURE_16], // 2^22
    [{ ...dims(64, 64, 32), batch: 32 }, TEXTURE_16], // batched attention scores: 2^22
    [dims(32, 32, 1 << 20), TEXTURE_16], // large but a single 32×32 block
  ];
  for (const [d, want] of cases) {
    if (textureBlockingFor(d) !== want) {
      throw new Error(`${d.m}×${d.n}×${d.k}: expected ${JSON.stringify(want)}`);
    }
  }
});

globalThis.addEventListener("unload", () => rt.destroy());
