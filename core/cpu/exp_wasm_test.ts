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

/** `rowExps` of `z[n, c]`; checks each row's max as the scalar loop's, each exp within the float32
 * bound of `Math.exp(z − max)` and each sum within the bound plus its float32 pairs; returns the
 * largest relative error of an exp above the flush. */
function checkRowExps(w: WasmExp, z: Float32Array, n: number, c: number): number {
  const exps = new Float32Array(n * c), sums = new Float64Array(n), maxes = new Float64Array(n);
  w.rowExps(z, { exps, sums, maxes }, c, 0, n);
  let worst = 0;
  for (let r = 0; r < n; r++) {
    let max = -Infinity, sum = 0;
    for (let k = 0; k < c; k++) if (z[r * c + k] > max) max = z[r * c + k];
    if (!Object.is(maxes[r], max)) throw new Error(`row ${r} of ${c}: max ${maxes[r]} ≠ ${max}`);
    for (let k = 0; k < c; k++) {
      const e = Math.exp(z[r * c + k] - max), got = exps[r * c + k];
      if (
        Number.isNaN(e) ? !Number.isNaN(got) : !(Math.abs(got - e) <= F32_BOUND * e + F32_FLUSH)
      ) {
        throw new Error(`row ${r} of ${c}, column ${k}: exp ${got}, expected ${e}`);
      }
      if (e > F32_FLUSH) worst = Math.max(worst, Math.abs(got - e) / e);
      sum += e;
    }
    // Pairs of results summed in float32 (one rounding each), then in float64.
    const tol = (F32_BOUND + 2 ** -24) * sum + c * (F32_FLUSH + 2 ** -52 * sum);
    if (Number.isNaN(sum) ? !Number.isNaN(sums[r]) : !(Math.abs(sums[r] - sum) <= tol)) {
      throw new Error(`row ${r} of ${c}: sum ${sums[r]}, expected ${sum}`);
    }
  }
  return worst;
}

Deno.test("SIMD rowExps: the rows' max as the scalar loop, float32 exps and sums within the bound", () => {
  const w = simd();
  for (const c of [1, 3, 4, 5, 33]) {
    const n = 3, z = new Float32Array(n * c).map((_, i) => Math.sin(i * 1.7) * 30);
    z[0] = NaN; // ignored by the max (as `if (z > max)`), NaN in its own exp
    if (c > 2) z[c + 1] = -Infinity;
    checkRowExps(w, z, n, c);
  }
  // Dense over [−90, 0] below maxima of every size (the argument's exact error matters there).
  let worst = 0;
  for (const max of [0, 1, -3.7, 12.3, 100.5, 1e4, -7e5, 3e-3]) {
    const n = 4, c = 1 << 14;
    const z = new Float32Array(n * c).map((_, i) => max - 90 * ((i * 0.6180339887) % 1));
    for (let r = 0; r < n; r++) z[r * c + r] = max;
    worst = Math.max(worst, checkRowExps(w, z, n, c));
  }
  console.log(`float32 exp: largest relative error ${(worst / 2 ** -24).toFixed(2)} u`);
});
