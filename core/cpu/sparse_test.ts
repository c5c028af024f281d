/**
 * The CPU backend's MVUE 2:4 and FP8 loops (`_sparse.ts`) through the WebAssembly kernels and
 * through the scalar fallback, bit for bit against the reference's oracles: sizes across the
 * kernels' pieces and their four-group steps, ties, ±0, subnormals, the largest accepted group
 * sums, a rejected group in a later piece, and ranges of groups computed apart (as two threads do).
 *
 * @module
 */

import { matrix } from "../../reference/matrix.ts";
import { quantizeFp8 } from "../../reference/fp8.ts";
import { mvue24 } from "../../reference/mvue.ts";
import { uniform4 } from "../../reference/rng.ts";
import { simdKernels, type WasmExp } from "./_exp_wasm.ts";
import { mvue24Range, quantizeFp8Into } from "./_sparse.ts";

function kernels(): WasmExp {
  const w = simdKernels();
  if (!w) throw new Error("WebAssembly SIMD is unavailable: the sparse kernels cannot be tested");
  return w;
}

/** Deterministic float32 values `±m·2^e` with `e` uniform in `[lo, hi)`. */
function values(n: number, seed: number, lo: number, hi: number): Float32Array {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Float32Array.from({ length: n }, () => {
    const v = (1 + next()) * 2 ** Math.floor(lo + (hi - lo) * next());
    return next() < 0.5 ? -v : v;
  });
}

/** Throws unless `got` and `want` have the same bits. */
function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  if (g.length !== w.length) throw new Error(`${what}: length ${g.length}, expected ${w.length}`);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) throw new Error(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
  }
}

Deno.test("quantizeFp8Into: WebAssembly and scalar equal the oracle bit for bit (ties, ±0, subnormals, pieces)", () => {
  const w = kernels();
  for (const format of ["e4m3", "e5m2"] as const) {
    const max = format === "e4m3" ? 448 : 57344;
    const inputs: Float32Array[] = [
      values(2 * 4096 + 7, 1, -30, 3), // several pieces and a ragged end
      values(3, 2, -140, -120), // float32 subnormals only: the scale clamps to FLOAT32_MAX
      new Float32Array(5), // zeros: scale 1
      Float32Array.of(-0, 0, -0),
    ];
    // Exact grid midpoints after scaling by 1 (amax = max): ties to even in every binade, in the
    // subnormal binades and at the saturation edge; signed zeros; float32 subnormals.
    const ties = [max, -max, max * 0.99, 1e-40, -1e-40, 0, -0, 2 ** -30, -(2 ** -30)];
    for (let e = -20; e < 16; e++) {
      for (const k of [0.5, 1.5, 2.5, 3.5, 8.5, 9.5, 15.5]) ties.push(k * 2 ** e, -k * 2 ** e);
    }
    inputs.push(Float32Array.from(ties.filter((v) => Math.abs(v) <= max)));
    for (const [i, x] of inputs.entries()) {
      const want = quantizeFp8(matrix(1, x.length, x), { format }).dequantized.data;
      const viaWasm = new Float32Array(x.length), scalar = new Float32Array(x.length);
      quantizeFp8Into(x, x.length, format, viaWasm, w);
      quantizeFp8Into(x, x.length, format, scalar, null);
      sameBits(viaWasm, want, `${format} input ${i}, WebAssembly`);
      sameBits(scalar, want, `${format} input ${i}, scalar`);
    }
  }
});

Deno.test("mvue24Range: WebAssembly and scalar equal the oracle bit for bit, whole or in two ranges", () => {
  const w = kernels();
  const rows = 3, cols = 4 * 701; // 2103 groups: pieces of 1024, a ragged end (not 4 groups)
  const x = values(rows * cols, 3, -20, 4);
  x.fill(0, 0, 8); // all-zero groups
  x.set([1e-3, 5, 1e-3, 1e-3, 1e-40, -1e-40, 0, -0, 2 ** 124, -(2 ** 124), 2 ** 124, 2 ** 123], 8);
  x.set([-0, 0, 0, 3e-7, 1, 1, 1, 1], 4 * 1023); // across the first piece boundary
  for (const [seed, stream] of [[1, 0], [2 ** 40 + 7, 2 ** 31 + 5], [2 ** 53 - 1, 2 ** 32 - 1]]) {
    const want = mvue24(matrix(rows, cols, x), { seed, stream }).data;
    for (const k of [w, null]) {
      const name = `seed ${seed}, stream ${stream}, ${k ? "WebAssembly" : "scalar"}`;
      const whole = new Float32Array(x.length), split = new Float32Array(x.length);
      mvue24Range(x, cols, seed, stream, whole, "test", 0, x.length, k);
      sameBits(whole, want, name);
      // Two ranges of whole groups, the second first (as the helper thread may finish earlier).
      const mid = 4 * 1337;
      mvue24Range(x, cols, seed, stream, split, "test", mid, x.length, k);
      mvue24Range(x, cols, seed, stream, split, "test", 0, mid, k);
      sameBits(split, want, `${name}, two ranges`);
    }
  }
});

/** The message `run` throws ("nothing thrown" if none). */
function thrown(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    return String(e);
  }
  return "nothing thrown";
}

Deno.test("mvue24Range: the oracle's RangeErrors in its order (values, then seed, then group sums), late pieces", () => {
  const w = kernels(), cols = 4 * 600, base = values(2 * cols, 4, -10, 2);
  const cases: [string, (x: Float32Array) => void, number][] = [
    // Row 1, columns 2008..2011: the second piece, the third of four groups the kernel takes at once.
    ["a sum above 2^126", (x) => x.set([3e38, 3e38, 0, 0], 4 * 1102), 5],
    ["two sums", (x) => x.set([3e38, 3e38, 0, 0, 0, 3e38, 0, 3e38], 4 * 1102), 5],
    ["NaN after a bad sum", (x) => x.set([3e38, 3e38, 0, 0, 0, 0, NaN], 4 * 1102), 5],
    ["-Infinity", (x) => (x[4 * 1103 + 3] = -Infinity), 5],
    ["a bad seed and a bad sum", (x) => x.set([3e38, 3e38], 4 * 1102), -1],
    ["a bad seed and Infinity", (x) => (x[4 * 1103] = Infinity), 1.5],
    ["a bad seed alone", () => {}, 2 ** 53],
  ];
  for (const [name, edit, seed] of cases) {
    const x = base.slice();
    edit(x);
    const theirs = thrown(() => mvue24(matrix(2, cols, x), { seed }));
    if (!theirs.startsWith("RangeError")) throw new Error(`${name}: the oracle: ${theirs}`);
    for (const k of [w, null]) {
      const out = new Float32Array(x.length);
      const mine = thrown(() =>
        mvue24Range(x, cols, seed, 0, out, "sample MVUE 2:4", 0, x.length, k)
      );
      if (mine !== theirs) {
        throw new Error(`${name}, ${k ? "WebAssembly" : "scalar"}: "${mine}" vs "${theirs}"`);
      }
    }
  }
});

Deno.test("quantizeFp8Into: NaN or ±Infinity in a later piece throws the oracle's RangeError", () => {
  const w = kernels(), cols = 100, x = values(4096 * 2 + 408, 5, -10, 2);
  for (const bad of [NaN, Infinity, -Infinity]) {
    const y = x.slice();
    y[4096 + 777] = bad;
    y[4096 + 999] = -bad;
    const theirs = thrown(() => quantizeFp8(matrix(y.length / cols, cols, y), { format: "e5m2" }));
    if (!theirs.startsWith("RangeError")) throw new Error(`${bad}: the oracle: ${theirs}`);
    for (const k of [w, null]) {
      const mine = thrown(() => quantizeFp8Into(y, cols, "e5m2", new Float32Array(y.length), k));
      if (mine !== theirs) {
        throw new Error(`${bad}, ${k ? "WebAssembly" : "scalar"}: "${mine}" vs "${theirs}"`);
      }
    }
  }
});

Deno.test("mvue24Range: a uniform equal to a partial sum of the first pick's CDF picks inclusively, as the oracle", () => {
  // Magnitudes ≥ 64 (ε vanishes) summing exactly to S = 2^30, with the partial sum through
  // position p (0, 1, 2) equal to u0·S: the partial sum of t equals u0 exactly (an exclusive
  // comparison would pick p + 1).
  const seed = 11, groups = 24, x = new Float32Array(4 * groups), S = 2 ** 30;
  for (let q = 0; q < groups; q++) {
    const U = uniform4(seed, 0, q)[0] * S, p = q % 3;
    // Position p + 1 small: picking it instead of p changes the pair.
    const a = p === 0
      ? [U, 64, S - U - 128, 64]
      : p === 1
      ? [64, U - 64, 64, S - U - 64]
      : [64, U - 128, 64, S - U];
    if (!a.every((v) => v >= 64)) continue; // too close to 0 or 1 for this split: a random group
    a.forEach((v, i) => (x[4 * q + i] = (q + i) % 2 ? -v : v));
  }
  const want = mvue24(matrix(1, x.length, x), { seed }).data;
  for (const k of [kernels(), null]) {
    const got = new Float32Array(x.length);
    mvue24Range(x, x.length, seed, 0, got, "test", 0, x.length, k);
    sameBits(got, want, k ? "WebAssembly" : "scalar");
  }
});
