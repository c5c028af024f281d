/**
 * The reference backend op by op: hand-computed cases, finite-difference gradients in float64, the
 * 2:4 operations against the `reference/` oracles, and the memory rules. Over 600 lines: one test
 * (or a few) per `Backend` operation, sharing one backend.
 *
 * @module
 */

import type { Tensor } from "./backend.ts";
import { assertClose, assertEqualArrays, finiteDifference } from "./grad_check.ts";
import { matrix } from "../reference/matrix.ts";
import { ReferenceBackend } from "./reference_backend.ts";
import { prune24, pruneNM } from "../reference/prune.ts";
import { softThreshold24 } from "../reference/soft_threshold.ts";
import { transposableMask24 } from "../reference/transposable.ts";
import { mvue24 } from "../reference/mvue.ts";
import { quantizeFp8 } from "../reference/fp8.ts";
import { uniform4 } from "../reference/rng.ts";
import { assert, assertRejects, assertThrows, seededRandom } from "../reference/testing.ts";

// ---- helpers ------------------------------------------------------------------------------------

/** Uniforms in [-1, 1) · scale from the seeded Philox stream (two draws per value: 48 bits). */
function randoms(n: number, seed: number, scale = 1): Float64Array {
  const rand = seededRandom(seed);
  return Float64Array.from({ length: n }, () => scale * ((rand() + rand() * 2 ** -24) * 2 - 1));
}

/** A plain `Error` (not a subclass) mentioning `parts`: how a released tensor is reported. */
function throwsPlainError(fn: () => unknown, ...parts: string[]): void {
  const e = assertThrows(fn, Error, ...parts);
  assert(e.constructor === Error, `expected a plain Error, got ${e.constructor.name}`);
}

/** The same values rounded to float32 (what an f32 tensor stores). */
const f32 = (x: ArrayLike<number>) => Float64Array.from(Float32Array.from(x));

const EXACT64 = { atol: 1e-14, rtol: 1e-13 };
const FD = { atol: 1e-8, rtol: 1e-6 };

/**
 * Checks `analytic` (a gradient w.r.t. the input of `forward`) against central differences of
 * `x ↦ Σ forward(x) ⊙ c` for a fixed random `c`, on an f64 backend.
 */
function checkGradient(
  be: ReferenceBackend,
  x0: Float64Array,
  shape: number[],
  forward: (x: Tensor) => Tensor,
  analytic: (x: Tensor, c: Tensor) => Tensor,
  label: string,
): void {
  const outShape = forward(be.tensor(x0, shape)).shape;
  const c = randoms(outShape.reduce((p, d) => p * d, 1), 99);
  const numeric = finiteDifference((x) => {
    const y = forward(be.tensor(x, shape));
    return be.readF64(be.dot(y, be.tensor(c, y.shape)))[0];
  }, Float64Array.from(x0));
  const exact = be.readF64(analytic(be.tensor(x0, shape), be.tensor(c, outShape)));
  assertClose(exact, numeric, FD, label);
  be.release();
}

function naiveMatmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
      }
      out[i * n + j] = s;
    }
  }
  return out;
}

/** erf by its everywhere-convergent series `2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(1·3·…·(2n+1))`. */
function erfSeries(x: number): number {
  let term = x, sum = x;
  for (let n = 1; Math.abs(term) > 1e-18 * Math.abs(sum); n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

// ---- construction and memory --------------------------------------------------------------------

Deno.test("ReferenceBackend names itself and validates its precision", () => {
  const be = new ReferenceBackend();
  if (be.name !== "reference" || be.device !== "CPU (pure TypeScript, f32)") {
    throw new Error(`unexpected identity ${be.name} / ${be.device}`);
  }
  if (new ReferenceBackend({ precision: "f64" }).device !== "CPU (pure TypeScript, f64)") {
    throw new Error("unexpected f64 device string");
  }
  assertThrows(
    () => new ReferenceBackend({ precision: "f16" as "f32" }),
    RangeError,
    "precision",
    "f16",
  );
});

Deno.test("tensor/indices/full/read: f32 rounds, f64 keeps, i32 converts", async () => {
  const be32 = new ReferenceBackend(), be64 = new ReferenceBackend({ precision: "f64" });
  const data = new Float64Array([0.1, -1 / 3, 1e-40, 3]);
  const t32 = be32.tensor(data, [2, 2]);
  if (t32.dtype !== "f32" || t32.size !== 4 || t32.shape.join() !== "2,2") {
    throw new Error("unexpected tensor metadata");
  }
  assertEqualArrays(await be32.read(t32), Float32Array.from(data), "f32 storage");
  assertEqualArrays(be32.readF64(t32), f32(data), "f32 storage read as f64");
  assertEqualArrays(be64.readF64(be64.tensor(data, [4])), data, "f64 storage");
  assertEqualArrays(await be64.read(be64.tensor(data, [4])), Float32Array.from(data), "f64 read");
  const idx = be32.indices(new Int32Array([3, -2, 7]), [3]);
  if (idx.dtype !== "i32") throw new Error("indices should be i32");
  assertEqualArrays(await be32.read(idx), [3, -2, 7], "indices read back");
  assertEqualArrays(await be32.read(be32.full([2, 3], 2.5)), new Array(6).fill(2.5), "full");
  assertEqualArrays(await be32.read(be32.full([3])), [0, 0, 0], "full default");
  const [a, b] = await be32.readMany([t32, idx]);
  assertEqualArrays(a, Float32Array.from(data), "readMany first");
  assertEqualArrays(b, [3, -2, 7], "readMany second");
  // The upload is a copy.
  const src = new Float32Array([1, 2]);
  const t = be32.tensor(src, [2]);
  src[0] = 9;
  assertEqualArrays(await be32.read(t), [1, 2], "copied upload");
});

Deno.test("tensor/indices/full reject bad shapes, lengths and types", () => {
  const be = new ReferenceBackend();
  assertThrows(() => be.tensor(new Float32Array(5), [2, 3]), RangeError, "[2, 3]", "6", "5");
  assertThrows(() => be.tensor(new Float32Array(2), [2, -1]), RangeError, "[2, -1]");
  assertThrows(() => be.tensor(new Float32Array(2), [2.5]), RangeError, "[2.5]");
  assertThrows(() => be.tensor(new Float32Array(1), []), RangeError, "shape");
  assertThrows(() => be.tensor([1, 2] as unknown as Float32Array, [2]), TypeError, "Array");
  assertThrows(() => be.indices(new Float32Array(2) as unknown as Int32Array, [2]), TypeError);
  assertThrows(() => be.indices(new Int32Array(2), [3]), RangeError, "[3]");
  assertThrows(() => be.full([2], NaN), RangeError, "NaN");
});

Deno.test("release frees temporaries; kept tensors survive; used released tensors throw", async () => {
  const be = new ReferenceBackend();
  const param = be.keep(be.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]));
  const tmp = be.scale(param, 2);
  const view = be.reshape(param, [4]);
  const count = () => be.temporaryCount;
  if (count() !== 1) throw new Error(`expected 1 temporary, got ${count()}`);
  be.release();
  if (count() !== 0) throw new Error("release left temporaries");
  assertEqualArrays(await be.read(param), [1, 2, 3, 4], "kept tensor after release");
  assertEqualArrays(await be.read(view), [1, 2, 3, 4], "view of a kept tensor after release");
  throwsPlainError(() => be.scale(tmp, 1), "Cannot use a released tensor", "[2, 2]");
  throwsPlainError(() => be.add(param, tmp), "Cannot use a released tensor");
  throwsPlainError(() => be.keep(tmp), "Cannot use a released tensor");
  throwsPlainError(() => be.dispose(tmp), "Cannot use a released tensor");
  await assertRejects(() => be.read(tmp), Error, "Cannot use a released tensor");
  await assertRejects(() => be.readMany([param, tmp]), Error, "Cannot use a released tensor");
  be.dispose(param);
  throwsPlainError(() => be.readF64(param), "Cannot use a released tensor");
  throwsPlainError(() => be.readF64(view), "Cannot use a released tensor");
});

Deno.test("reshape is a view: same storage, keep through the view, size checked", async () => {
  const be = new ReferenceBackend();
  const x = be.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  const v = be.keep(be.reshape(x, [3, 2]));
  if (v.shape.join() !== "3,2" || v.dtype !== "f32") throw new Error("bad view metadata");
  be.assign(v, be.tensor(new Float32Array([6, 5, 4, 3, 2, 1]), [3, 2]));
  assertEqualArrays(await be.read(x), [6, 5, 4, 3, 2, 1], "write through the view");
  be.release();
  assertEqualArrays(await be.read(x), [6, 5, 4, 3, 2, 1], "kept via its view");
  const ids = be.reshape(be.indices(new Int32Array([1, 2]), [2]), [1, 2]);
  if (ids.dtype !== "i32") throw new Error("reshape must keep the dtype");
  assertThrows(() => be.reshape(x, [4, 2]), RangeError, "[2, 3]", "[4, 2]");
});

Deno.test("tensors of another backend or other objects are TypeErrors", () => {
  const a = new ReferenceBackend(), b = new ReferenceBackend();
  const t = a.tensor(new Float32Array(4), [4]);
  assertThrows(() => b.scale(t, 2), TypeError, "another ReferenceBackend");
  assertThrows(() => b.keep(t), TypeError, "another ReferenceBackend");
  const fake = { shape: [4], size: 4, dtype: "f32" } as Tensor;
  assertThrows(() => a.add(t, fake), TypeError, "Object");
});

Deno.test("assign copies in place and checks shape and dtype", async () => {
  const be = new ReferenceBackend();
  const dst = be.keep(be.full([2, 2]));
  be.assign(dst, be.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]));
  assertEqualArrays(await be.read(dst), [1, 2, 3, 4], "assigned");
  assertThrows(() => be.assign(dst, be.full([4])), RangeError, "[2, 2] vs [4]");
  assertThrows(() => be.assign(dst, be.indices(new Int32Array(4), [2, 2])), TypeError, "i32");
});

// ---- linear algebra -----------------------------------------------------------------------------

Deno.test("matmul: 2-D with every transpose, f32 rounds the f64 sum once, f64 exact", () => {
  const be32 = new ReferenceBackend(), be64 = new ReferenceBackend({ precision: "f64" });
  const [m, k, n] = [3, 5, 4];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = randoms(m * k, 1 + Number(transA)), b = randoms(k * n, 3 + Number(transB));
      const aShape = transA ? [k, m] : [m, k], bShape = transB ? [n, k] : [k, n];
      const label = `transA=${transA} transB=${transB}`;
      const r64 = be64.matmul(be64.tensor(a, aShape), be64.tensor(b, bShape), { transA, transB });
      if (r64.shape.join() !== `${m},${n}`) throw new Error(`${label}: shape ${r64.shape}`);
      assertClose(be64.readF64(r64), naiveMatmul(a, b, m, k, n, transA, transB), EXACT64, label);
      // f32 storage: inputs rounded, the f64 dot product (same k order) rounded once.
      const r32 = be32.matmul(be32.tensor(a, aShape), be32.tensor(b, bShape), { transA, transB });
      const expected = Float32Array.from(naiveMatmul(f32(a), f32(b), m, k, n, transA, transB));
      assertEqualArrays(be32.readF64(r32), expected, `${label} (f32)`);
    }
  }
});

Deno.test("matmul: batched 3-D with transposes matches per-batch products", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const [batch, m, k, n] = [3, 2, 4, 5];
  for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
    const a = randoms(batch * m * k, 11), b = randoms(batch * k * n, 12);
    const out = be.readF64(
      be.matmul(
        be.tensor(a, transA ? [batch, k, m] : [batch, m, k]),
        be.tensor(b, transB ? [batch, n, k] : [batch, k, n]),
        { transA, transB },
      ),
    );
    for (let i = 0; i < batch; i++) {
      const expected = naiveMatmul(
        a.subarray(i * m * k, (i + 1) * m * k),
        b.subarray(i * k * n, (i + 1) * k * n),
        m,
        k,
        n,
        transA,
        transB,
      );
      assertClose(out.subarray(i * m * n, (i + 1) * m * n), expected, EXACT64, `batch ${i}`);
    }
  }
});

Deno.test("matmul: an empty reduction gives zeros; shape errors name the shapes", () => {
  const be = new ReferenceBackend();
  const z = be.matmul(be.full([2, 0]), be.full([0, 3]));
  assertEqualArrays(be.readF64(z), new Array(6).fill(0), "K = 0");
  assertThrows(
    () => be.matmul(be.full([2, 3]), be.full([4, 5])),
    RangeError,
    "a [2, 3]",
    "b [4, 5]",
    "3 vs 4",
  );
  assertThrows(
    () => be.matmul(be.full([2, 3]), be.full([5, 4]), { transB: true }),
    RangeError,
    "(transB)",
  );
  assertThrows(() => be.matmul(be.full([2, 2, 3]), be.full([3, 3, 4])), RangeError, "batch");
  assertThrows(() => be.matmul(be.full([2, 3]), be.full([1, 3, 4])), RangeError, "both 2-D");
  assertThrows(() => be.matmul(be.full([6]), be.full([6])), RangeError, "[6]");
  assertThrows(
    () => be.matmul(be.indices(new Int32Array(4), [2, 2]), be.full([2, 2])),
    TypeError,
    "i32",
  );
});

Deno.test("transpose and permute0213 match index formulas and round-trip", () => {
  const be = new ReferenceBackend();
  const x = randoms(12, 5);
  const t = be.readF64(be.transpose(be.tensor(x, [3, 4])));
  const expected = new Float64Array(12);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) expected[c * 3 + r] = x[r * 4 + c];
  assertEqualArrays(t, f32(expected), "transpose");
  assertThrows(() => be.transpose(be.full([2, 2, 2])), RangeError, "[2, 2, 2]");

  const [A, B, C, D] = [2, 3, 4, 5];
  const v = randoms(A * B * C * D, 6);
  const xt = be.tensor(v, [A * B, C * D]);
  const p = be.permute0213(xt, [A, B, C, D]);
  if (p.shape.join() !== `${A},${C},${B},${D}`) throw new Error(`shape ${p.shape}`);
  const pd = be.readF64(p);
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        for (let d = 0; d < D; d++) {
          const got = pd[((a * C + c) * B + b) * D + d], want = v[((a * B + b) * C + c) * D + d];
          if (got !== Math.fround(want)) throw new Error(`permute mismatch at ${[a, b, c, d]}`);
        }
      }
    }
  }
  const back = be.permute0213(p, [A, C, B, D]);
  assertEqualArrays(be.readF64(back), be.readF64(xt), "permute0213 round trip");
  assertThrows(() => be.permute0213(xt, [2, 3, 4, 4]), RangeError, "[2, 3, 4, 4]", "120");
});

Deno.test("splitHeads is permute0213 of sliceCols per part; mergeHeads inverts it", () => {
  const be = new ReferenceBackend();
  const [B, T, h, hd, P] = [2, 3, 2, 4, 3], d = h * hd;
  const x = be.tensor(randoms(B * T * P * d, 7), [B * T, P * d]);
  const parts = be.splitHeads(x, { batch: B, heads: h, parts: P });
  parts.forEach((part, i) => {
    const want = be.permute0213(be.sliceCols(x, i * d, d), [B, T, h, hd]);
    if (part.shape.join() !== `${B * h},${T},${hd}`) throw new Error(`shape ${part.shape}`);
    assertEqualArrays(be.readF64(part), be.readF64(want), `part ${i}`);
  });
  assertEqualArrays(be.readF64(be.mergeHeads(parts, B)), be.readF64(x), "merge(split(x))");
  assertThrows(() => be.splitHeads(x, { batch: B, heads: 3, parts: P }), RangeError, "h = 3");
  assertThrows(() => be.mergeHeads([parts[0], be.full([1, 2])], B), RangeError);
});

Deno.test("sliceCols and padCols match a naive copy and invert each other", () => {
  const be = new ReferenceBackend();
  const x = be.tensor(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), [2, 5]);
  const s = be.sliceCols(x, 1, 3);
  if (s.shape.join() !== "2,3") throw new Error(`slice shape ${s.shape}`);
  assertEqualArrays(be.readF64(s), [2, 3, 4, 7, 8, 9], "slice");
  const p = be.padCols(s, 1, 5);
  assertEqualArrays(be.readF64(p), [0, 2, 3, 4, 0, 0, 7, 8, 9, 0], "pad");
  assertEqualArrays(be.readF64(be.sliceCols(p, 1, 3)), be.readF64(s), "slice(pad(x)) = x");
  assertEqualArrays(be.readF64(be.sliceCols(x, 5, 0)), [], "empty slice");
  assertThrows(() => be.sliceCols(x, 3, 3), RangeError, "[3, 6)", "5 columns");
  assertThrows(() => be.sliceCols(x, -1, 2), RangeError, "start", "-1");
  assertThrows(() => be.padCols(s, 3, 5), RangeError, "6 columns", "got 5");
  assertThrows(() => be.padCols(be.full([6]), 0, 8), RangeError, "[6]");
});

// ---- element-wise -------------------------------------------------------------------------------

Deno.test("add, addScaled, mul, scale match naive loops and round once in f32", () => {
  const be = new ReferenceBackend();
  const a = f32(randoms(10, 7)), b = f32(randoms(10, 8));
  const ta = be.tensor(a, [2, 5]), tb = be.tensor(b, [2, 5]);
  const s = 0.37;
  const ops: [string, Tensor, (i: number) => number][] = [
    ["add", be.add(ta, tb), (i) => a[i] + b[i]],
    ["addScaled", be.addScaled(ta, tb, s), (i) => a[i] + s * b[i]],
    ["mul", be.mul(ta, tb), (i) => a[i] * b[i]],
    ["scale", be.scale(ta, s), (i) => s * a[i]],
  ];
  for (const [label, t, f] of ops) {
    if (t.shape.join() !== "2,5") throw new Error(`${label}: shape ${t.shape}`);
    assertEqualArrays(be.readF64(t), Float32Array.from({ length: 10 }, (_, i) => f(i)), label);
  }
  assertThrows(() => be.add(ta, be.full([5, 2])), RangeError, "[2, 5] vs [5, 2]");
  assertThrows(() => be.mul(ta, be.full([10])), RangeError, "[2, 5] vs [10]");
  assertThrows(() => be.addScaled(ta, tb, Infinity), RangeError, "Infinity");
  assertThrows(() => be.scale(ta, NaN), RangeError, "NaN");
  assertThrows(() => be.add(be.indices(new Int32Array(10), [2, 5]), tb), TypeError, "i32");
});

Deno.test("gelu matches exact-erf GELU to ~1e-15 (f64), incl. tails and infinities", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  // 0.5·x·erfc(−x/√2) from mpmath at 30 significant digits, covering Cody's three ranges of
  // |x/√2| (≤ 0.46875, ≤ 4, beyond).
  const xs = [-3, -1, -0.66, -0.5, 0.3, 0.6, 1, 2.5, 5.5, 6];
  const want = [
    -0.00404969409489028358,
    -0.15865525393145705141,
    -0.16805376368308185876,
    -0.15426876936299344818,
    0.18537342665668578306,
    0.43544812934995583127,
    0.84134474606854294859,
    2.4844758366855596621,
    5.4999998955574064376,
    5.9999999940804741298,
  ];
  const tight = { atol: 0, rtol: 2e-15 };
  assertClose(be.readF64(be.gelu(be.tensor(new Float64Array(xs), [10]))), want, tight, "gelu");
  // In the negative tail GELU is ill-conditioned: x·GELU'(x)/GELU(x) ≈ x², so the rounding of
  // x/√2 alone (half an ulp) moves the exact result by about x²·1.1e-16 relative.
  const tail: [number, number][] = [
    [-7, -8.9586878072008450307e-12],
    [-10, -7.619853024160526066e-23],
    [-30, -1.4720141781444561179e-196],
  ];
  for (const [x, g] of tail) {
    const got = be.readF64(be.gelu(be.tensor(new Float64Array([x]), [1])));
    assertClose(got, [g], { atol: 0, rtol: 3e-16 * (1 + x * x) }, `gelu(${x})`);
  }
  // Random points against the series erf; the series itself is only good to ~1e-14 absolute
  // (its terms grow like e^{x²} before the e^{−x²} factor), hence the absolute tolerance.
  const x = randoms(200, 13, 6);
  const series = x.map((v) => 0.5 * v * (1 + erfSeries(v / Math.SQRT2)));
  assertClose(
    be.readF64(be.gelu(be.tensor(x, [200]))),
    series,
    { atol: 1e-13, rtol: 2e-15 },
    "gelu",
  );
  const edge = be.readF64(be.gelu(be.tensor(new Float64Array([Infinity, -Infinity, -60, 0]), [4])));
  assertEqualArrays(edge, [Infinity, 0, 0, 0], "gelu at ±Inf, far tail, 0");
  // f32 mode stores the same value rounded once.
  const be32 = new ReferenceBackend();
  assertEqualArrays(
    be32.readF64(be32.gelu(be32.tensor(new Float64Array(xs), [10]))),
    Float32Array.from(be.readF64(be.gelu(be.tensor(f32(xs), [10])))),
    "gelu f32",
  );
});

Deno.test("geluBackward matches central differences and the exact derivative", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const x0 = randoms(24, 21, 4);
  checkGradient(be, x0, [4, 6], (x) => be.gelu(x), (x, c) => be.geluBackward(x, c), "gelu'");
  const d = be.readF64(
    be.geluBackward(
      be.tensor(new Float64Array([1, -Infinity, Infinity, -60]), [4]),
      be.full([4], 2),
    ),
  );
  // GELU'(1) = Φ(1) + φ(1) from mpmath; limits 0 and 1; 2·GELU'(−60) underflows to 0.
  assertClose(d, [2 * 1.0833154705876862984, 0, 2, 0], { atol: 0, rtol: 2e-15 }, "gelu' values");
  assertThrows(() => be.geluBackward(be.full([4]), be.full([2, 2])), RangeError, "[4] vs [2, 2]");
});

Deno.test("dropout keeps element i iff uniform4(seed, stream, i/4)[i%4] >= p, scaled 1/(1−p)", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const n = 4003, p = 0.3, seed = 12345, stream = 7;
  const x = randoms(n, 31);
  const out = be.readF64(be.dropout(be.tensor(x, [n]), p, seed, stream));
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const keep = uniform4(seed, stream, Math.floor(i / 4))[i % 4] >= p;
    const want = keep ? x[i] / (1 - p) : 0;
    if (out[i] !== want) throw new Error(`dropout mismatch at ${i}: ${out[i]} vs ${want}`);
    if (keep) kept++;
  }
  // Keep fraction within 5 standard deviations of 1 − p.
  const sd = Math.sqrt(n * p * (1 - p));
  if (Math.abs(kept - n * (1 - p)) > 5 * sd) throw new Error(`kept ${kept} of ${n}`);
  // Applying it again to dy with the same arguments masks the same elements (its backward pass).
  const dy = be.readF64(be.dropout(be.full([n], 1), p, seed, stream));
  for (let i = 0; i < n; i++) {
    if ((dy[i] === 0) !== (out[i] === 0 && x[i] !== 0)) throw new Error(`mask differs at ${i}`);
  }
  assertEqualArrays(be.readF64(be.dropout(be.tensor(x, [n]), 0, seed, stream)), x, "p = 0");
  const other = be.readF64(be.dropout(be.tensor(x, [n]), p, seed, stream + 1));
  if (other.every((v, i) => v === out[i])) throw new Error("streams should differ");
  const t = be.full([8], 1);
  assertThrows(() => be.dropout(t, 1, 0, 0), RangeError, "p", "1");
  assertThrows(() => be.dropout(t, -0.1, 0, 0), RangeError, "-0.1");
  assertThrows(() => be.dropout(t, 0.5, -1, 0), RangeError, "seed", "-1");
  assertThrows(() => be.dropout(t, 0.5, 0, 2 ** 32), RangeError, "stream");
});

// ---- normalisation, attention, embedding, loss --------------------------------------------------

Deno.test("layerNorm matches a naive two-pass computation", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const [n, d] = [3, 7], eps = 1e-5;
  const x = randoms(n * d, 41, 3), w = randoms(d, 42), b = randoms(d, 43);
  const { y, mean, rstd } = be.layerNorm(
    be.tensor(x, [n, d]),
    be.tensor(w, [d]),
    be.tensor(b, [d]),
    eps,
  );
  const ey = new Float64Array(n * d), em = new Float64Array(n), er = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const row = x.subarray(r * d, (r + 1) * d);
    const mu = row.reduce((s, v) => s + v, 0) / d;
    const variance = row.reduce((s, v) => s + (v - mu) ** 2, 0) / d;
    em[r] = mu;
    er[r] = 1 / Math.sqrt(variance + eps);
    for (let c = 0; c < d; c++) ey[r * d + c] = (row[c] - mu) * er[r] * w[c] + b[c];
  }
  if (y.shape.join() !== `${n},${d}` || mean.shape.join() !== `${n}`) throw new Error("shapes");
  assertClose(be.readF64(y), ey, EXACT64, "layerNorm y");
  assertClose(be.readF64(mean), em, EXACT64, "layerNorm mean");
  assertClose(be.readF64(rstd), er, EXACT64, "layerNorm rstd");
  const xt = be.tensor(x, [n, d]);
  assertThrows(() => be.layerNorm(xt, be.full([d + 1]), be.full([d]), eps), RangeError, "w", "[8]");
  assertThrows(() => be.layerNorm(xt, be.full([d]), be.full([d, 1]), eps), RangeError, "b");
  assertThrows(() => be.layerNorm(xt, be.full([d]), be.full([d]), 0), RangeError, "eps");
  assertThrows(() => be.layerNorm(be.full([2, 0]), be.full([0]), be.full([0]), 1), RangeError);
});

Deno.test("layerNormBackward matches central differences for x, w and b", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const [n, d] = [3, 5], eps = 1e-5;
  const x0 = randoms(n * d, 51, 2), w0 = randoms(d, 52), b0 = randoms(d, 53);
  const ln = (x: Tensor, w: Tensor, b: Tensor) => be.layerNorm(x, w, b, eps).y;
  const grads = (x: Tensor, w: Tensor, b: Tensor, c: Tensor) => {
    const { mean, rstd } = be.layerNorm(x, w, b, eps);
    return be.layerNormBackward(x, w, mean, rstd, c);
  };
  const W = () => be.tensor(w0, [d]), B = () => be.tensor(b0, [d]), X = () => be.tensor(x0, [n, d]);
  checkGradient(be, x0, [n, d], (x) => ln(x, W(), B()), (x, c) => grads(x, W(), B(), c).dx, "dx");
  checkGradient(be, w0, [d], (w) => ln(X(), w, B()), (w, c) => grads(X(), w, B(), c).dw, "dw");
  checkGradient(be, b0, [d], (b) => ln(X(), W(), b), (b, c) => grads(X(), W(), b, c).db, "db");
  const { mean, rstd } = be.layerNorm(X(), W(), B(), eps);
  assertThrows(
    () => be.layerNormBackward(X(), W(), mean, rstd, be.full([n, d + 1])),
    RangeError,
    "[3, 5] vs [3, 6]",
  );
  assertThrows(
    () => be.layerNormBackward(X(), W(), be.full([n + 1]), rstd, X()),
    RangeError,
    "mean",
  );
});

Deno.test("layerNormBackwardAdd is layerNormBackward with dx added to acc", () => {
  const be = new ReferenceBackend();
  const [n, d] = [3, 5];
  const x = be.tensor(randoms(n * d, 91), [n, d]), w = be.tensor(randoms(d, 92), [d]);
  const { mean, rstd } = be.layerNorm(x, w, be.full([d]), 1e-5);
  const dy = be.tensor(randoms(n * d, 93), [n, d]), acc = be.tensor(randoms(n * d, 94), [n, d]);
  const plain = be.layerNormBackward(x, w, mean, rstd, dy);
  const added = be.layerNormBackwardAdd(x, w, mean, rstd, dy, acc);
  assertEqualArrays(be.readF64(added.dx), be.readF64(be.add(acc, plain.dx)), "dx");
  assertEqualArrays(be.readF64(added.dw), be.readF64(plain.dw), "dw");
  assertEqualArrays(be.readF64(added.db), be.readF64(plain.db), "db");
  assertThrows(
    () => be.layerNormBackwardAdd(x, w, mean, rstd, dy, be.full([n, d + 1])),
    RangeError,
  );
});

Deno.test("causalSoftmax: rows sum to 1, zeros above the diagonal, matches naive", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const [B, T] = [2, 5], scale = 0.7;
  const s = randoms(B * T * T, 61, 4);
  const p = be.readF64(be.causalSoftmax(be.tensor(s, [B, T, T]), scale));
  for (let b = 0; b < B; b++) {
    for (let r = 0; r < T; r++) {
      const o = (b * T + r) * T;
      const exps = Array.from({ length: r + 1 }, (_, c) => Math.exp(scale * s[o + c]));
      const total = exps.reduce((a, v) => a + v, 0);
      const want = Array.from({ length: T }, (_, c) => (c <= r ? exps[c] / total : 0));
      assertClose(p.subarray(o, o + T), want, EXACT64, `batch ${b} row ${r}`);
      const rowSum = p.subarray(o, o + T).reduce((a, v) => a + v, 0);
      if (Math.abs(rowSum - 1) > 1e-14) throw new Error(`row sum ${rowSum}`);
      for (let c = r + 1; c < T; c++) if (p[o + c] !== 0) throw new Error("not causal");
    }
  }
  // Large scores stay finite (max-subtracted), and f32 rows also sum to 1.
  const be32 = new ReferenceBackend();
  const big = be32.readF64(
    be32.causalSoftmax(be32.tensor(new Float32Array([1000, 0, 1000, 999]), [1, 2, 2]), 1),
  );
  assertClose(big, [1, 0, 1 / (1 + Math.exp(-1)), Math.exp(-1) / (1 + Math.exp(-1))], {
    atol: 0,
    rtol: 1e-7,
  }, "large scores");
  assertThrows(() => be.causalSoftmax(be.full([2, 3, 4]), 1), RangeError, "[2, 3, 4]");
  assertThrows(() => be.causalSoftmax(be.full([1, 2, 2]), NaN), RangeError, "scale");
  assertThrows(
    () => be.causalSoftmax(be.tensor(new Float64Array([-Infinity, 0, 0, 0]), [1, 2, 2]), 1),
    RangeError,
    "row 0",
  );
});

Deno.test("softmaxBackward (through causalSoftmax) matches central differences", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const [B, T] = [2, 4], scale = 0.6;
  const s0 = randoms(B * T * T, 71, 2);
  checkGradient(
    be,
    s0,
    [B, T, T],
    (s) => be.causalSoftmax(s, scale),
    (s, c) => be.softmaxBackward(be.causalSoftmax(s, scale), c, { scale, causal: true }),
    "softmax'",
  );
  assertThrows(() => be.softmaxBackward(be.full([2, 3]), be.full([3, 2])), RangeError, "[2, 3]");
  const p = be.full([2, 3]);
  assertThrows(() => be.softmaxBackward(p, p, { scale: NaN }), RangeError, "scale");
  assertThrows(() => be.softmaxBackward(p, p, { causal: true }), RangeError, "[B, T, T]");
  // In float32, `scale` is the product a separate `scale` of the result stores.
  const be32 = new ReferenceBackend();
  const p32 = be32.causalSoftmax(be32.tensor(randoms(B * T * T, 72, 2), [B, T, T]), scale);
  const dp32 = be32.tensor(randoms(B * T * T, 73, 1), [B, T, T]);
  assertEqualArrays(
    be32.readF64(be32.softmaxBackward(p32, dp32, { scale, causal: true })),
    be32.readF64(be32.scale(be32.softmaxBackward(p32, dp32), scale)),
    "scaled softmax backward",
  );
});

Deno.test("embedding gathers rows; embeddingBackward scatter-adds (central differences)", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const [V, d] = [5, 3];
  const table = randoms(V * d, 81), ids = new Int32Array([4, 0, 4, 2, 4, 1]);
  const idx = be.indices(ids, [ids.length]);
  const out = be.readF64(be.embedding(be.tensor(table, [V, d]), idx));
  const want = Array.from(ids).flatMap((i) => Array.from(table.subarray(i * d, (i + 1) * d)));
  assertEqualArrays(out, want, "embedding rows");
  checkGradient(
    be,
    table,
    [V, d],
    (t) => be.embedding(t, be.indices(ids, [ids.length])),
    (_t, c) => be.embeddingBackward(be.indices(ids, [ids.length]), c, V),
    "embedding'",
  );
  const idx2 = be.indices(ids, [ids.length]);
  const g = be.embeddingBackward(idx2, be.full([ids.length, d], 1), V);
  if (g.shape.join() !== `${V},${d}`) throw new Error(`shape ${g.shape}`);
  assertEqualArrays(be.readF64(g), [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 3, 3, 3], "counts");
  const t = be.tensor(table, [V, d]);
  assertThrows(
    () => be.embedding(t, be.indices(new Int32Array([5]), [1])),
    RangeError,
    "5",
    "[0, 5)",
  );
  assertThrows(() => be.embedding(t, be.indices(new Int32Array([-1]), [1])), RangeError, "-1");
  assertThrows(() => be.embedding(t, be.full([2])), TypeError, "idx", "i32");
  assertThrows(() => be.embedding(t, be.indices(new Int32Array(4), [2, 2])), RangeError, "[2, 2]");
  assertThrows(
    () => be.embeddingBackward(idx2, be.full([ids.length + 1, d]), V),
    RangeError,
    "row counts",
  );
  assertThrows(() => be.embeddingBackward(idx2, be.full([ids.length, d]), 4), RangeError, "[0, 4)");
});

Deno.test("crossEntropy matches a manual log-softmax and stays stable for large logits", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const [n, c] = [4, 6];
  const z = randoms(n * c, 91, 5), targets = new Int32Array([0, 5, 2, 2]);
  const loss = be.crossEntropy(be.tensor(z, [n, c]), be.indices(targets, [n]));
  if (loss.shape.join() !== "1") throw new Error(`shape ${loss.shape}`);
  let manual = 0;
  for (let r = 0; r < n; r++) {
    const row = z.subarray(r * c, (r + 1) * c);
    const logSoftmax = row.map((v) =>
      Math.log(Math.exp(v) / row.reduce((s, u) => s + Math.exp(u), 0))
    );
    manual -= logSoftmax[targets[r]];
  }
  assertClose(be.readF64(loss), [manual / n], EXACT64, "cross-entropy");
  const big = be.crossEntropy(
    be.tensor(new Float64Array([1000, 1001, -1000, 998]), [2, 2]),
    be.indices(new Int32Array([0, 1]), [2]),
  );
  // Row 0 (target 0 of [1000, 1001]): log(1 + e); row 1 (target 1 of [−1000, 998]):
  // log(1 + e^−1998) = 0. A naive exp(1000) would overflow to NaN.
  assertClose(be.readF64(big), [Math.log(1 + Math.E) / 2], EXACT64, "large logits");
  const zt = be.tensor(z, [n, c]);
  assertThrows(
    () => be.crossEntropy(zt, be.indices(new Int32Array([0, 6, 0, 0]), [n])),
    RangeError,
    "6",
  );
  assertThrows(() => be.crossEntropy(zt, be.indices(new Int32Array(3), [3])), RangeError, "[3]");
  assertThrows(() => be.crossEntropy(zt, be.full([n])), TypeError, "targets", "i32");
  assertThrows(
    () => be.crossEntropy(be.full([0, 3]), be.indices(new Int32Array(0), [0])),
    RangeError,
  );
});

Deno.test("crossEntropyBackward = dLoss·(softmax − onehot)/N matches central differences", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const [n, c] = [3, 5];
  const z0 = randoms(n * c, 101, 3), targets = new Int32Array([4, 0, 2]);
  const dLoss = 1.7;
  const numeric = finiteDifference((z) => {
    const t = be.tensor(z, [n, c]);
    return dLoss * be.readF64(be.crossEntropy(t, be.indices(targets, [n])))[0];
  }, Float64Array.from(z0));
  const exact = be.crossEntropyBackward(
    be.tensor(z0, [n, c]),
    be.indices(targets, [n]),
    be.tensor(new Float64Array([dLoss]), [1]),
  );
  assertClose(be.readF64(exact), numeric, FD, "cross-entropy'");
  assertThrows(
    () => be.crossEntropyBackward(be.tensor(z0, [n, c]), be.indices(targets, [n]), be.full([2])),
    RangeError,
    "dLoss",
  );
});

Deno.test("meanRows, sumSquares and dot match naive sums", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const x = randoms(12, 111), y = randoms(12, 112);
  const mr = be.readF64(be.meanRows(be.tensor(x, [3, 4])));
  const want = [0, 1, 2, 3].map((c) => (x[c] + x[4 + c] + x[8 + c]) / 3);
  assertClose(mr, want, EXACT64, "meanRows");
  const ss = be.sumSquares(be.tensor(x, [2, 6]));
  if (ss.shape.join() !== "1") throw new Error("sumSquares must be [1]");
  assertClose(be.readF64(ss), [x.reduce((s, v) => s + v * v, 0)], EXACT64, "sumSquares");
  const dt = be.dot(be.tensor(x, [12]), be.tensor(y, [12]));
  assertClose(be.readF64(dt), [x.reduce((s, v, i) => s + v * y[i], 0)], EXACT64, "dot");
  assertThrows(() => be.meanRows(be.full([0, 3])), RangeError, "[0, 3]");
  assertThrows(() => be.dot(be.full([12]), be.full([3, 4])), RangeError, "[12] vs [3, 4]");
});

// ---- 2:4 sparsity -------------------------------------------------------------------------------

Deno.test("pruneNM and softThreshold24 return the oracles' values and masks as tensors", () => {
  for (const precision of ["f32", "f64"] as const) {
    const be = new ReferenceBackend({ precision });
    const w = Float32Array.from(randoms(32, 121));
    w.set([0.1, -3, 2, 0.5, 1, 1, 1, 1]); // SPEC §9 cases
    const wt = be.tensor(w, [4, 8]);
    const hard = be.pruneNM(wt, 2, 4), ref = prune24(matrix(4, 8, w));
    if (hard.pruned.shape.join() !== "4,8" || hard.mask.shape.join() !== "4,8") {
      throw new Error("shapes");
    }
    assertEqualArrays(be.readF64(hard.pruned), ref.pruned.data, `${precision} prune24 values`);
    assertEqualArrays(be.readF64(hard.mask), ref.mask, `${precision} prune24 mask`);
    const one = be.pruneNM(wt, 1, 2), refOne = pruneNM(matrix(4, 8, w), { n: 1, m: 2 });
    assertEqualArrays(be.readF64(one.mask), refOne.mask, `${precision} 1:2 mask`);
    const soft = be.softThreshold24(wt), refSoft = softThreshold24(matrix(4, 8, w));
    assertEqualArrays(be.readF64(soft.pruned), refSoft.pruned.data, `${precision} soft values`);
    assertEqualArrays(be.readF64(soft.mask), refSoft.mask, `${precision} soft mask`);
    assertEqualArrays(be.readF64(soft.pruned).subarray(0, 4), [0, -2.5, 1.5, 0], "SPEC τ case");
  }
  const be = new ReferenceBackend();
  assertThrows(() => be.pruneNM(be.full([2, 6]), 2, 4), RangeError, "multiple of 4", "6");
  assertThrows(() => be.pruneNM(be.full([8]), 2, 4), RangeError, "[8]");
  assertThrows(() => be.softThreshold24(be.full([2, 6])), RangeError, "6");
});

Deno.test("transposableMask24 and mvue24 return the oracles' results", () => {
  const be = new ReferenceBackend();
  const block = [0.1, -3, 2, 0.5, 4, 0.2, -0.3, 1, 0.5, 1, -2, 3, -1, 2, 0.1, 0.2];
  const mask = be.transposableMask24(be.tensor(new Float32Array(block), [4, 4]));
  assertEqualArrays(be.readF64(mask), [0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0], "#54");
  const w = Float32Array.from(randoms(64, 131));
  assertEqualArrays(
    be.readF64(be.transposableMask24(be.tensor(w, [8, 8]))),
    transposableMask24(matrix(8, 8, w)).mask,
    "transposable mask",
  );
  assertThrows(() => be.transposableMask24(be.full([6, 8])), RangeError, "6");
  const g = Float32Array.from(randoms(48, 132));
  const out = be.mvue24(be.tensor(g, [4, 12]), 42, 3);
  assertEqualArrays(
    be.readF64(out),
    mvue24(matrix(4, 12, g), { seed: 42, stream: 3 }).data,
    "mvue",
  );
  assertThrows(() => be.mvue24(be.full([2, 6]), 1, 0), RangeError, "6");
});

Deno.test("maskedDecay, flipCount and quantizeFp8 go through the oracles", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const decayed = be.maskedDecay(
    be.tensor(new Float64Array([1, 1, 1, 1]), [1, 4]),
    be.tensor(new Float64Array([1, 2, 3, 4]), [1, 4]),
    be.tensor(new Float64Array([1, 0, 1, 0]), [1, 4]),
    0.03,
  );
  // SPEC §9 (values computed in float32 by the oracle).
  assertEqualArrays(be.readF64(decayed), f32([1, 1.06, 1, 1.12]), "masked decay");
  assertThrows(
    () => be.maskedDecay(be.full([1, 4]), be.full([1, 4]), be.full([1, 4], 0.5), 0.1),
    RangeError,
    "0.5",
  );
  assertThrows(
    () => be.maskedDecay(be.full([1, 4]), be.full([1, 4]), be.full([4, 1]), 0.1),
    RangeError,
    "[1, 4] vs [4, 1]",
  );
  const flips = be.flipCount(
    be.tensor(new Float64Array([1, 0, 1, 0, 1, 1]), [2, 3]),
    be.tensor(new Float64Array([0, 0, 1, 1, 1, 0]), [2, 3]),
  );
  if (flips.shape.join() !== "1") throw new Error("flipCount must be [1]");
  assertEqualArrays(be.readF64(flips), [3], "flip count");
  assertThrows(() => be.flipCount(be.full([2], 2), be.full([2])), RangeError, "2");
  const x = Float32Array.from(randoms(24, 141, 3));
  for (const format of ["e4m3", "e5m2"] as const) {
    assertEqualArrays(
      be.readF64(be.quantizeFp8(be.tensor(x, [2, 3, 4]), format)),
      quantizeFp8(matrix(6, 4, x), { format }).dequantized.data,
      `fp8 ${format}`,
    );
  }
  assertThrows(() => be.quantizeFp8(be.full([4], 1), "e3m4" as "e4m3"), TypeError);
});

Deno.test("geglu and swiglu run the gated oracles with shape checks", () => {
  const be = new ReferenceBackend();
  // SPEC §9: [0.5, −1, 2 | 0, 1, −2] → [0, −0.841192, −0.090804].
  const x = be.tensor(new Float32Array([0.5, -1, 2, 0, 1, -2]), [1, 6]);
  const y = be.geglu(x);
  if (y.shape.join() !== "1,3") throw new Error(`shape ${y.shape}`);
  assertClose(be.readF64(y), [0, -0.841192, -0.090804], { atol: 1e-6, rtol: 0 }, "geglu");
  const dx = be.gegluBackward(x, be.full([1, 3], 1));
  assertClose(
    be.readF64(dx),
    [0, 0.841192, -0.045402, 0.25, -1.082964, -0.172198],
    { atol: 1e-6, rtol: 0 },
    "geglu'",
  );
  // SwiGLU: x ⊙ gate·σ(gate).
  const silu = (g: number) => g / (1 + Math.exp(-g));
  assertClose(
    be.readF64(be.swiglu(x)),
    [0, -silu(1), 2 * silu(-2)],
    { atol: 1e-6, rtol: 0 },
    "swiglu",
  );
  if (be.swigluBackward(x, be.full([1, 3], 1)).shape.join() !== "1,6") throw new Error("shape");
  assertThrows(() => be.geglu(be.full([2, 5])), RangeError, "[2, 5]");
  assertThrows(() => be.gegluBackward(x, be.full([1, 6])), RangeError, "[1, 6]");
  assertThrows(() => be.swigluBackward(x, be.full([2, 3])), RangeError, "[2, 3]");
});

// ---- optimizer ----------------------------------------------------------------------------------

Deno.test("adamw updates param, m and v in place as documented", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const n = 6;
  const p0 = randoms(n, 151), g1 = randoms(n, 152), g2 = randoms(n, 153);
  const param = be.keep(be.tensor(p0, [2, 3]));
  const m = be.keep(be.full([2, 3])), v = be.keep(be.full([2, 3]));
  const hp = { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 };
  const p = Float64Array.from(p0), em = new Float64Array(n), ev = new Float64Array(n);
  for (const [step, g] of [[1, g1], [2, g2]] as const) {
    be.adamw(param, be.tensor(g, [2, 3]), m, v, { ...hp, step });
    for (let i = 0; i < n; i++) {
      em[i] = 0.9 * em[i] + 0.1 * g[i];
      ev[i] = 0.95 * ev[i] + 0.05 * g[i] * g[i];
      const mHat = em[i] / (1 - 0.9 ** step), vHat = ev[i] / (1 - 0.95 ** step);
      p[i] -= 0.01 * (mHat / (Math.sqrt(vHat) + 1e-8) + 0.1 * p[i]);
    }
    be.release();
  }
  assertClose(be.readF64(m), em, EXACT64, "m");
  assertClose(be.readF64(v), ev, EXACT64, "v");
  assertClose(be.readF64(param), p, EXACT64, "param");
  const g = be.full([2, 3], 1);
  assertThrows(() => be.adamw(param, g, m, m, hp), RangeError, "distinct");
  assertThrows(() => be.adamw(param, be.full([3, 2]), m, v, hp), RangeError, "[2, 3] vs [3, 2]");
  assertThrows(() => be.adamw(param, g, m, v, { ...hp, step: 0 }), RangeError, "step", "0");
  assertThrows(() => be.adamw(param, g, m, v, { ...hp, beta2: 1 }), RangeError, "beta2");
  assertThrows(() => be.adamw(param, g, m, v, { ...hp, eps: 0 }), RangeError, "eps");
  assertThrows(() => be.adamw(param, g, m, v, { ...hp, lr: NaN }), RangeError, "lr");
});
