import { compileExpWat } from "./_exp_wasm_compile.ts";
import { EXP_WASM_BASE64 } from "./_exp_wasm_bytes.ts";
import { WasmExp } from "./_exp_wasm.ts";
import { EXP_F32_ERROR_UNITS, EXP_F32_UNDERFLOW, EXP_WASM_UNDERFLOW } from "./_exp_wasm_source.ts";

/** Largest relative difference from `Math.exp` the CPU backend's tolerances assume (SPEC §10.6). */
const BOUND = 5e-15;

function simd(): WasmExp {
  const w = WasmExp.create();
  if (!w) throw new Error("WebAssembly SIMD is unavailable: the SIMD exp cannot be tested");
  return w;
}

Deno.test("the committed SIMD exp bytes are the compiled source (core/cpu/_gen_exp_wasm.ts)", async () => {
  const compiled = btoa(String.fromCharCode(...await compileExpWat()));
  if (compiled !== EXP_WASM_BASE64) {
    throw new Error("core/cpu/_exp_wasm_bytes.ts is stale: run core/cpu/_gen_exp_wasm.ts");
  }
});

Deno.test("SIMD exp is within 5e-15 of Math.exp on [-708, 0], 0 below, exact limits", () => {
  const w = simd();
  const xs: number[] = [];
  for (let i = 0; i <= 400_000; i++) xs.push(EXP_WASM_UNDERFLOW * i / 400_000);
  for (let i = 0; i <= 200_000; i++) xs.push(-20 * i / 200_000); // softmax, GELU, CE range
  // The reduction's boundaries (k·ln2/4 and just below), above the underflow.
  for (let i = 0; i <= 4085; i++) xs.push(-(i * Math.LN2) / 4, -(i * Math.LN2) / 4 - 1e-12);
  xs.push(7 - 7); // an odd count: the padding lanes
  const values = Float64Array.from(xs);
  w.expInPlace(values, 0, values.length);
  let worst = 0, at = 0;
  xs.forEach((x, i) => {
    const rel = Math.abs(values[i] - Math.exp(x)) / Math.exp(x);
    if (!(rel <= worst)) [worst, at] = [rel, x];
  });
  if (!(worst <= BOUND)) throw new Error(`SIMD exp error ${worst} at x = ${at} exceeds ${BOUND}`);
  const edges = Float64Array.from([0, -0, -Infinity, NaN, -708.5, -745, -1e-300]);
  w.expInPlace(edges, 0, edges.length);
  const want = [1, 1, 0, NaN, 0, 0, 1];
  want.forEach((v, i) => {
    if (!Object.is(edges[i], v)) throw new Error(`exp edge ${i}: got ${edges[i]}, expected ${v}`);
  });
});

/** The float32 kernel's bound (SPEC §10.6): relative, and `e^-87` where it flushes to 0. */
const F32_BOUND = EXP_F32_ERROR_UNITS * 2 ** -24, F32_FLUSH = Math.exp(EXP_F32_UNDERFLOW + 1e-5);
const U = 2 ** -24;

/** The module's raw exports (the float32 kernel, tested on its own). */
function rawModule(): { mem: WebAssembly.Memory; exp_shift_f32: (...a: number[]) => number } {
  const bytes = Uint8Array.from(atob(EXP_WASM_BASE64), (ch) => ch.charCodeAt(0));
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as never;
}

Deno.test("float32 SIMD exp(z − m) within its bound over [−90, 0] below maxima of every size", () => {
  const x = rawModule(), n = 1 << 14;
  x.mem.grow(4);
  const f32 = new Float32Array(x.mem.buffer);
  let worst = 0;
  for (const m of [0, 1, -3.7, 12.3, 100.5, 1e4, -7e5, 3e-3]) {
    // Arguments dense over [−90, 0]; the argument's exact error (TwoSum) matters for large m.
    const z = new Float32Array(n).map((_, i) => Math.fround(m) - 90 * ((i * 0.6180339887) % 1));
    f32.set(z);
    const sum = x.exp_shift_f32(0, 4 * n, n, m);
    let want = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp(z[i] - Math.fround(m)), got = f32[n + i];
      if (!(Math.abs(got - e) <= F32_BOUND * e + F32_FLUSH)) {
        throw new Error(`exp(${z[i]} − ${m}) = ${got}, expected ${e}`);
      }
      if (e > F32_FLUSH) worst = Math.max(worst, Math.abs(got - e) / e);
      want += e;
    }
    // Pairs of results summed in float32 (one rounding each), then in float64.
    const tol = (F32_BOUND + U) * want + n * (F32_FLUSH + 2 ** -52 * want);
    if (!(Math.abs(sum - want) <= tol)) throw new Error(`m = ${m}: sum ${sum}, expected ${want}`);
  }
  console.log(`float32 exp: largest relative error ${(worst / U).toFixed(2)} u`);
});

Deno.test("SIMD crossEntropyRows: the rows' max as the scalar loop, sums and gradients within the bounds", () => {
  const w = simd();
  for (const c of [1, 3, 4, 5, 33, 4096]) {
    const n = 3, z = new Float32Array(n * c).map((_, i) => Math.sin(i * 1.7) * 30);
    z[0] = NaN; // ignored by the max (as `if (z > max)`), NaN in its own exp
    if (c > 2) z[c + 1] = -Infinity;
    const t = Int32Array.from({ length: n }, (_, r) => (r * 7 + 2) % c), factor = 0.3;
    const grads = new Float32Array(n * c), sums = new Float64Array(n), maxes = new Float64Array(n);
    w.crossEntropyRows(z, t, { grads, sums, maxes }, factor, { c, r0: 0, r1: n });
    for (let r = 0; r < n; r++) {
      const row = Array.from(z.subarray(r * c, (r + 1) * c));
      const max = row.reduce((a, v) => (v > a ? v : a), -Infinity);
      if (!Object.is(maxes[r], max)) throw new Error(`row ${r} of ${c}: max ${maxes[r]} ≠ ${max}`);
      const exps = row.map((v) => Math.exp(v - max)), sum = exps.reduce((a, e) => a + e, 0);
      const sumTol = (F32_BOUND + U) * sum + c * (F32_FLUSH + 2 ** -52 * sum);
      if (Number.isNaN(sum) ? !Number.isNaN(sums[r]) : !(Math.abs(sums[r] - sum) <= sumTol)) {
        throw new Error(`row ${r} of ${c}: sum ${sums[r]}, expected ${sum}`);
      }
      // Each probability: its exp's error and the sum's, then one float32 rounding.
      const pTol = 2 * F32_BOUND + 2 * U;
      exps.forEach((e, k) => {
        const want = factor * (e / sum - (k === t[r] ? 1 : 0)), got = grads[r * c + k];
        const tol = pTol * factor * (e / sum) + U * Math.abs(want) + factor * F32_FLUSH;
        if (Number.isNaN(want) ? !Number.isNaN(got) : !(Math.abs(got - want) <= tol)) {
          throw new Error(`row ${r} of ${c}, column ${k}: gradient ${got}, expected ${want}`);
        }
      });
    }
  }
});
