import { type Matrix, matrix } from "./matrix.ts";
import { SPEC_BETA, SPEC_SOFT_24 } from "./cases.ts";
import { prune24 } from "./prune.ts";
import { softThreshold24, ssteScale, type SsteScaleRecipe } from "./soft_threshold.ts";
import {
  assert,
  assertEqualArrays,
  assertThrows,
  gaussianMatrix,
  seededRandom,
  tieHeavyMatrix,
} from "./testing.ts";

// ---- small local helpers -------------------------------------------------------------------

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// ---- SPEC §9 hand-derived cases --------------------------------------------------------------

Deno.test("softThreshold24 reproduces every soft-threshold case of SPEC §9", () => {
  for (const { w, out, mask } of SPEC_SOFT_24) {
    const result = softThreshold24(matrix(1, 4, w));
    assertEqualArrays(result.pruned.data, out, `output of [${w}]`);
    assertEqualArrays(result.mask, mask, `mask of [${w}]`);
  }
  // The same cases stacked as rows of one matrix.
  const stacked = softThreshold24(matrix(8, 4, SPEC_SOFT_24.flatMap((c) => c.w)));
  assertEqualArrays(stacked.pruned.data, SPEC_SOFT_24.flatMap((c) => c.out), "stacked");
  assert(stacked.pruned.rows === 8 && stacked.pruned.cols === 4, "stacked shape changed");
});

Deno.test("ssteScale of the single group [0.1, -3, 2, 0.5] is 10.5 / 8.5 = 21/17 (SPEC §9)", () => {
  const w = matrix(1, 4, SPEC_BETA.w);
  assert(ssteScale(w) === SPEC_BETA.beta, `β = ${ssteScale(w)}`);
  assert(
    ssteScale(w, { recipe: "mse" }) === SPEC_BETA.beta,
    "explicit mse differs from the default",
  );
  assert(ssteScale(w, {}) === SPEC_BETA.beta, "empty options differ from the default");
  // l1: ‖W‖₁ / ‖S‖₁ with the f32 values of W; S = [0, -2.5, 1.5, 0].
  const l1 = (Math.fround(0.1) + 3 + 2 + 0.5) / 4;
  assert(ssteScale(w, { recipe: "l1" }) === l1, `l1 β = ${ssteScale(w, { recipe: "l1" })}`);
  assert(ssteScale(w, { recipe: "none" }) === 1, "none is not 1");
});

Deno.test("ssteScale is 1 when the soft-thresholded tensor is all zero", () => {
  const cases = [matrix(2, 4), matrix(1, 8, [1, 1, 1, 1, -3, 3, 3, -3]), matrix(0, 4)];
  for (const w of cases) {
    for (const recipe of ["mse", "l1", "none"] as SsteScaleRecipe[]) {
      const beta = ssteScale(w, { recipe });
      assert(beta === 1, `β = ${beta} for recipe ${recipe}, [${w.rows}, ${w.cols}]`);
    }
  }
});

// ---- properties --------------------------------------------------------------------------------

Deno.test("softThreshold24 equals sign(w)(|w| - τ) on the hard mask, τ from SPEC's branch-free form", () => {
  for (const w of [gaussianMatrix(16, 32, 11), tieHeavyMatrix(16, 32, 12)]) {
    const before = w.data.slice();
    const { pruned, mask } = softThreshold24(w);
    assertEqualArrays(w.data, before, "input was modified");
    assertEqualArrays(mask, prune24(w).mask, "mask is not the hard 2:4 mask");
    for (let start = 0; start < w.data.length; start += 4) {
      const [a0, a1, a2, a3] = Array.from(w.data.subarray(start, start + 4), Math.abs);
      const tau = Math.min(
        Math.max(Math.min(a0, a1), Math.min(a2, a3)),
        Math.min(Math.max(a0, a1), Math.max(a2, a3)),
      );
      for (let i = start; i < start + 4; i++) {
        const x = w.data[i];
        const expected = mask[i] === 0 ? 0 : Math.fround(Math.sign(x) * (Math.abs(x) - tau));
        if (pruned.data[i] !== expected) {
          throw new Error(`at ${i}: got ${pruned.data[i]}, expected ${expected} (τ = ${tau})`);
        }
      }
    }
  }
});

Deno.test("softThreshold24 is continuous across a ranking change; hard pruning jumps", () => {
  // The 2nd and 3rd magnitudes swap between a and b: the hard output jumps by about 1, the soft
  // output moves by the size of the perturbation.
  const a = matrix(1, 4, [2, 1.001, 0.999, 0.1]);
  const b = matrix(1, 4, [2, 0.999, 1.001, 0.1]);
  const dw = maxAbsDiff(a.data, b.data); // 0.002 up to f32 rounding
  const hardJump = maxAbsDiff(prune24(a).pruned.data, prune24(b).pruned.data);
  const softMove = maxAbsDiff(softThreshold24(a).pruned.data, softThreshold24(b).pruned.data);
  assert(hardJump > 1, `hard output moved only ${hardJump}`);
  assert(softMove <= dw + 1e-6, `soft output moved ${softMove} for an input change of ${dw}`);

  // Random groups built around a near tie of the 2nd and 3rd magnitudes, perturbed by up to eta.
  // Within one ranking each output is |w_i| - τ with both terms 1-Lipschitz in the max norm, so
  // by continuity |ΔS| <= 2·|Δw|∞ everywhere; the slack covers the two f32 roundings of S.
  const rand = seededRandom(21);
  let crossings = 0;
  for (let trial = 0; trial < 2000; trial++) {
    const mid = 0.5 + rand();
    const eta = 1e-3 * (0.1 + rand());
    const base = [2 + rand(), mid + eta * (rand() - 0.5), mid + eta * (rand() - 0.5), 0.2 * rand()];
    const order = [0, 1, 2, 3].sort(() => rand() - 0.5);
    const w = matrix(1, 4, order.map((k) => (rand() < 0.5 ? -1 : 1) * base[k]));
    const v = matrix(1, 4, Array.from(w.data, (x) => x + eta * (2 * rand() - 1)));
    const dwInf = maxAbsDiff(w.data, v.data);
    const sw = softThreshold24(w), sv = softThreshold24(v);
    if (sw.mask.join() !== sv.mask.join()) crossings++;
    const slack = 2 * 2 ** -24 * Math.max(maxAbs(w.data), maxAbs(v.data));
    const move = maxAbsDiff(sw.pruned.data, sv.pruned.data);
    if (move > 2 * dwInf + slack) {
      throw new Error(`[${w.data}] → [${v.data}]: soft output moved ${move}, |Δw|∞ = ${dwInf}`);
    }
  }
  // Make sure the loop really exercised ranking changes.
  assert(crossings > 200, `only ${crossings} of 2000 perturbations changed the mask`);
});

Deno.test("softThreshold24 treats ±Inf as a magnitude and never outputs NaN", () => {
  const inf = Infinity;
  const w = matrix(4, 4, [
    ...[inf, 1, 2, 3],
    ...[-inf, 1, 2, -3],
    ...[inf, -inf, inf, 1],
    ...[inf, inf, 1, -2],
  ]);
  const { pruned, mask } = softThreshold24(w);
  assertEqualArrays(mask, [1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0], "mask");
  assertEqualArrays(pruned.data, [
    ...[inf, 0, 0, 1],
    ...[-inf, 0, 0, -1],
    ...[0, 0, 0, 0], // τ = Inf: the kept infinite entries equal τ
    ...[inf, inf, 0, 0],
  ], "values");
});

Deno.test("ssteScale mse minimises ‖W − βS‖², l1 matches the L1 norms, both on Gaussians ≈ SPEC", () => {
  const w = gaussianMatrix(256, 1024, 31);
  const s = softThreshold24(w).pruned.data;
  const beta = ssteScale(w);
  // SPEC §1.3: ≈ 1.48 for i.i.d. Gaussian weights. A long simulation gives E[β] ≈ 1.4837 with a
  // standard deviation of about 0.002 at this size; the bound is five of those.
  assert(Math.abs(beta - 1.484) < 0.01, `Gaussian β = ${beta}`);
  const residual = (b: number) => {
    let r = 0;
    for (let i = 0; i < s.length; i++) r += (w.data[i] - b * s[i]) ** 2;
    return r;
  };
  assert(residual(beta) < residual(beta * 1.001), "β·(1.001) fits better than β");
  assert(residual(beta) < residual(beta * 0.999), "β·(0.999) fits better than β");

  const betaL1 = ssteScale(w, { recipe: "l1" });
  let normW = 0, normS = 0;
  for (let i = 0; i < s.length; i++) {
    normW += Math.abs(w.data[i]);
    normS += Math.abs(betaL1 * s[i]);
  }
  assert(Math.abs(normS - normW) <= 1e-12 * normW, `‖βS‖₁ = ${normS}, ‖W‖₁ = ${normW}`);
  assert(betaL1 > 2 && betaL1 < 3, `Gaussian l1 β = ${betaL1}`); // about 2.52
  assert(ssteScale(w, { recipe: "none" }) === 1, "none is not 1");
});

// ---- errors ----------------------------------------------------------------------------------

Deno.test("softThreshold24 and ssteScale reject a row length that is not a multiple of 4", () => {
  assertThrows(() => softThreshold24(matrix(2, 6)), RangeError, [
    "Cannot soft-threshold to 2:4: the row length must be a multiple of 4, got 6",
  ]);
  assertThrows(() => ssteScale(matrix(1, 10)), RangeError, [
    "Cannot compute the S-STE scale",
    "multiple of 4, got 10",
  ]);
});

Deno.test("softThreshold24 and ssteScale reject NaN; ssteScale also ±Inf", () => {
  const nan = matrix(2, 4, [1, 2, 3, 4, 5, NaN, 7, 8]);
  assertThrows(() => softThreshold24(nan), RangeError, ["soft-threshold", "row 1, column 1"]);
  assertThrows(() => ssteScale(nan), RangeError, ["S-STE scale", "NaN", "row 1, column 1"]);
  const inf = matrix(1, 8, [1, 2, 3, 4, 5, 6, -Infinity, 8]);
  for (const recipe of ["mse", "l1", "none"] as SsteScaleRecipe[]) {
    assertThrows(() => ssteScale(inf, { recipe }), RangeError, [
      "finite",
      "-Infinity at row 0, column 6",
    ]);
  }
});

Deno.test("ssteScale rejects an unknown recipe, naming it", () => {
  const w = matrix(1, 4, [1, 2, 3, 4]);
  const bad = (recipe: unknown) => ({ recipe } as { recipe: SsteScaleRecipe });
  assertThrows(() => ssteScale(w, bad("mse-dynamic")), TypeError, ['unknown recipe "mse-dynamic"']);
  assertThrows(() => ssteScale(w, bad("L1")), TypeError, ['"L1"', '"mse", "l1" or "none"']);
  assertThrows(() => ssteScale(w, bad(42)), TypeError, ["unknown recipe 42"]);
  assertThrows(() => ssteScale(w, "mse" as unknown as { recipe: SsteScaleRecipe }), TypeError, [
    "options",
    "got mse",
  ]);
});

Deno.test("softThreshold24 and ssteScale reject malformed matrices, naming the value", () => {
  const short = { rows: 1, cols: 8, data: new Float32Array(5) };
  assertThrows(() => softThreshold24(short), RangeError, ["1*8 = 8", "got 5"]);
  assertThrows(() => ssteScale(short), RangeError, ["1*8 = 8", "got 5"]);
  const f64 = { rows: 1, cols: 4, data: new Float64Array(4) } as unknown as Matrix;
  assertThrows(() => softThreshold24(f64), TypeError, ["Float32Array", "got Float64Array"]);
});
