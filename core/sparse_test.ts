/**
 * The SparseLinear node against SPEC §2.8, one layer at a time: the forward output, `∇X` and `∇W`
 * of every method are compared with the table's formulas evaluated on the host from the
 * `reference/` oracles (pruning, transposable mask, soft threshold, β, MVUE with the documented
 * stream, FP8), with the upstream gradient injected through `L = Σ Z ⊙ R`.
 *
 * Tolerance `atol 1e-6, rtol 1e-5`: both sides use the same float32 operands (the oracles are
 * float32 functions); they differ only in the rounding of the float32 GEMM results (≤ 1 ulp of
 * each output, about 6e-8 relative) — every formula error (a missing β, a wrong transpose, a
 * wrong stream) is orders of magnitude larger.
 */

import type { Tensor } from "./backend.ts";
import { ReferenceBackend } from "./reference_backend.ts";
import { Tape, Variable } from "./autograd.ts";
import {
  resolveSparseOptions,
  SPARSE_METHOD_TRAITS,
  SPARSE_METHODS,
  SparseLinear,
  sparseMethodTraits,
  type SparseOptions,
  type StepContext,
} from "./sparse.ts";
import { mvueStream } from "./streams.ts";
import { assertClose, assertEqualArrays } from "./grad_check.ts";
import { type Matrix, matrix } from "../reference/matrix.ts";
import { projectionLoss } from "./train_testing.ts";
import { normal } from "./init.ts";
import { prune24 } from "../reference/prune.ts";
import { softThreshold24, ssteScale } from "../reference/soft_threshold.ts";
import { transposableMask24 } from "../reference/transposable.ts";
import { mvue24 } from "../reference/mvue.ts";
import { quantizeFp8 } from "../reference/fp8.ts";
import { flipCount } from "../reference/flip_rate.ts";

const TOL = { atol: 1e-6, rtol: 1e-5 };
const IN = 8, OUT = 8, T = 8, LAYER = 1;
const W0 = normal(11, 1, OUT * IN, 0.5);
const X0 = normal(12, 1, T * IN, 1);
const R0 = normal(13, 1, T * OUT, 1);

/** Host product `op(A)·op(B)` of row-major matrices, accumulated in f64, rounded to f32. */
function mm(a: Matrix, b: Matrix, opts: { transA?: boolean; transB?: boolean } = {}): Matrix {
  const [m, k] = opts.transA ? [a.cols, a.rows] : [a.rows, a.cols];
  const n = opts.transB ? b.rows : b.cols;
  const out = matrix(m, n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = opts.transA ? a.data[p * a.cols + i] : a.data[i * a.cols + p];
        const bv = opts.transB ? b.data[j * b.cols + p] : b.data[p * b.cols + j];
        s += av * bv;
      }
      out.data[i * n + j] = s;
    }
  }
  return out;
}

function transpose(a: Matrix): Matrix {
  const out = matrix(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) out.data[j * a.rows + i] = a.data[i * a.cols + j];
  }
  return out;
}

const q = (a: Matrix, format: "e4m3" | "e5m2") => quantizeFp8(a, { format }).dequantized;

interface LayerRun {
  layer: SparseLinear;
  z: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
  flips: number | undefined;
}

/** The test layer: `OUT × IN`, weight `W0`. */
function testLayer(be: ReferenceBackend, sparse: SparseOptions, layerIndex = 0): SparseLinear {
  const shape = { inFeatures: IN, outFeatures: OUT };
  return new SparseLinear(be, "fc.weight", W0, shape, { sparse, layerIndex });
}

/** Sets the layer's weight to `w`, then opens and closes sparse step `step`; its flip count. */
async function stepWithWeight(
  be: ReferenceBackend,
  layer: SparseLinear,
  step: number,
  w: Float32Array,
): Promise<Tensor | undefined> {
  be.assign(layer.weight.value, be.tensor(w, [OUT, IN]));
  const flips = await layer.beginStep({ step, seed: 1, phase: "sparse" });
  layer.endStep();
  return flips;
}

async function runLayer(
  sparse: SparseOptions,
  ctx: StepContext = { step: 3, seed: 21, phase: "sparse" },
  be = new ReferenceBackend(),
): Promise<LayerRun> {
  const layer = testLayer(be, sparse, LAYER);
  await layer.initialize();
  const flipTensor = await layer.beginStep(ctx);
  const tape = new Tape(be);
  const x = new Variable(be.tensor(X0, [T, IN]), { requiresGrad: true });
  const z = layer.forward(tape, x);
  tape.backward(projectionLoss(tape, z, be.tensor(R0, [T, OUT])));
  const [zv, dx, dw] = await be.readMany([z.value, x.grad!, layer.weight.grad!]);
  const flips = flipTensor === undefined ? undefined : (await be.read(flipTensor))[0];
  layer.endStep();
  return { layer, z: zv, dx, dw, flips };
}

/** The effective weight W̃ of SPEC 2.8 from the oracles. */
function effectiveWeight(method: SparseOptions["method"]): Matrix {
  const w = matrix(OUT, IN, W0);
  switch (sparseMethodTraits(method).weight) {
    case "dense":
      return w;
    case "hard":
      return prune24(w).pruned;
    case "transposable":
      return transposableMask24(w).pruned;
    case "soft": {
      const beta = Math.fround(ssteScale(w));
      return matrix(OUT, IN, softThreshold24(w).pruned.data.map((v) => v * beta));
    }
  }
}

interface Expected {
  z: Matrix;
  dx: Matrix;
  dw: Matrix;
}

/** SPEC 2.8's three GEMMs on the host. */
function expected(
  sparse: SparseOptions,
  ctx: { step: number; seed: number } = { step: 3, seed: 21 },
): Expected {
  const o = resolveSparseOptions(sparse);
  const wt = effectiveWeight(o.method);
  const x = matrix(T, IN, X0), r = matrix(T, OUT, R0);
  const f4 = (a: Matrix) => o.fp8 ? q(a, "e4m3") : a;
  const f5 = (a: Matrix) => o.fp8 ? q(a, "e5m2") : a;
  const z = mm(f4(x), f4(wt), { transB: true });
  let wBack = wt;
  if (o.mvueOnWeight) {
    const stream = mvueStream(ctx.step, LAYER, "weight");
    wBack = transpose(mvue24(transpose(wt), { seed: ctx.seed, stream }));
  }
  const dx = mm(f5(r), f5(wBack));
  let dw: Matrix;
  if (o.mvue) {
    const stream = mvueStream(ctx.step, LAYER, "gradient");
    dw = mm(f5(mvue24(transpose(r), { seed: ctx.seed, stream })), f5(x));
  } else {
    dw = mm(f5(r), f5(x), { transA: true });
  }
  return { z, dx, dw };
}

async function checkMethod(sparse: SparseOptions, label: string): Promise<void> {
  const run = await runLayer(sparse);
  const e = expected(sparse);
  assertClose(run.z, e.z.data, TOL, `${label}: Z`);
  assertClose(run.dx, e.dx.data, TOL, `${label}: ∇X`);
  assertClose(run.dw, e.dw.data, TOL, `${label}: ∇W`);
}

Deno.test("SparseLinear: every method's Z, ∇X and ∇W follow SPEC 2.8", async () => {
  for (const method of SPARSE_METHODS) await checkMethod({ method }, method);
});

Deno.test("SparseLinear: ablation switches (MVUE off/on, MVUE on the weight, FP8 on STE)", async () => {
  await checkMethod({ method: "t-sr-ste", mvue: false }, "t-sr-ste without MVUE");
  await checkMethod({ method: "s-ste", mvue: false }, "s-ste without MVUE");
  await checkMethod({ method: "ste", mvue: true }, "ste with MVUE");
  await checkMethod({ method: "s-ste", mvueOnWeight: true }, "s-ste with MVUE on W̃ᵀ");
  await checkMethod({ method: "ste", fp8: true }, "ste with FP8");
});

Deno.test("SparseLinear: MVUE draws depend on the seed and step, and are unbiased for ∇W", async () => {
  const be = new ReferenceBackend();
  const exact = expected({ method: "s-ste", mvue: false }).dw.data;
  const K = 400;
  const sum = new Float64Array(exact.length), sumSq = new Float64Array(exact.length);
  let first: Float32Array | undefined;
  for (let k = 0; k < K; k++) {
    const { dw } = await runLayer({ method: "s-ste" }, { step: k, seed: 5, phase: "sparse" }, be);
    be.release();
    if (first === undefined) first = dw;
    for (let i = 0; i < dw.length; i++) {
      sum[i] += dw[i];
      sumSq[i] += dw[i] * dw[i];
    }
  }
  const again = await runLayer({ method: "s-ste" }, { step: 0, seed: 5, phase: "sparse" }, be);
  assertEqualArrays(again.dw, first!, "same seed and step → same draw");
  const other = await runLayer({ method: "s-ste" }, { step: 0, seed: 6, phase: "sparse" }, be);
  if (other.dw.every((v, i) => v === first![i])) throw new Error("a different seed drew the same");
  // Each ∇W entry is a sum of T/4 independent group estimates: its mean over K draws must lie
  // within 5 standard errors of the exact value (a biased estimator, e.g. without the 1/p
  // rescaling, misses by tens of standard errors).
  for (let i = 0; i < exact.length; i++) {
    const mean = sum[i] / K;
    const variance = Math.max(sumSq[i] / K - mean * mean, 0);
    const bound = 5 * Math.sqrt(variance / K) + 1e-5;
    if (Math.abs(mean - exact[i]) > bound) {
      throw new Error(`∇W[${i}]: mean ${mean} vs exact ${exact[i]} (bound ${bound})`);
    }
  }
});

Deno.test("SparseLinear: the dense phase is a plain dense linear (no MVUE, no FP8, no decay)", async () => {
  const be = new ReferenceBackend();
  const run = await runLayer(
    { method: "t-sr-ste+df" },
    { step: 3, seed: 21, phase: "dense" },
    be,
  );
  const e = expected({ method: "dense" });
  assertClose(run.z, e.z.data, TOL, "dense phase: Z");
  assertClose(run.dx, e.dx.data, TOL, "dense phase: ∇X");
  assertClose(run.dw, e.dw.data, TOL, "dense phase: ∇W");
  await run.layer.beginStep({ step: 4, seed: 21, phase: "dense" });
  const g = be.full([OUT, IN], 1);
  if (run.layer.decayGradient(g) !== g) throw new Error("the dense phase decayed the gradient");
  run.layer.endStep();
  // STEP's precondition phase is the same plain dense linear (SPEC 2.10).
  const step = await runLayer({ method: "step" }, { step: 0, seed: 21, phase: "dense" }, be);
  assertClose(step.z, e.z.data, TOL, "STEP precondition: Z");
  assertClose(step.dw, e.dw.data, TOL, "STEP precondition: ∇W");
  await step.layer.beginStep({ step: 1, seed: 21, phase: "dense" });
  if (step.layer.decayGradient(g) !== g) throw new Error("STEP's precondition decayed");
  step.layer.endStep();
});

Deno.test("SparseLinear: masked decay on the gradient (t-sr-ste α, sr-ste λ_W)", async () => {
  const be = new ReferenceBackend();
  const grad = normal(14, 1, OUT * IN, 1);
  const cases = [
    { sparse: { method: "t-sr-ste", alpha: 0.03 } as SparseOptions, rate: 0.03, mask: "t" },
    { sparse: { method: "sr-ste", lambdaW: 0.02 } as SparseOptions, rate: 0.02, mask: "h" },
    { sparse: { method: "step", lambdaW: 0.05 } as SparseOptions, rate: 0.05, mask: "h" },
  ];
  for (const { sparse, rate, mask } of cases) {
    const layer = testLayer(be, sparse);
    await layer.beginStep({ step: 0, seed: 1, phase: "sparse" });
    const out = await be.read(layer.decayGradient(be.tensor(grad, [OUT, IN])));
    layer.endStep();
    const w = matrix(OUT, IN, W0);
    const m = mask === "t" ? transposableMask24(w).mask : prune24(w).mask;
    const want = grad.map((g, i) => g + rate * (1 - m[i]) * W0[i]);
    assertClose(out, want, { atol: 1e-7, rtol: 1e-6 }, `${sparse.method}: decayed gradient`);
  }
});

Deno.test("SparseLinear: SR-STE decay on the weight is W ← W − lr·λ_W·(1−M)⊙W after the step", async () => {
  const be = new ReferenceBackend();
  const layer = testLayer(be, { method: "sr-ste", decayOn: "weight", lambdaW: 0.5 });
  await layer.beginStep({ step: 0, seed: 1, phase: "sparse" });
  const g = be.full([OUT, IN], 1);
  if (layer.decayGradient(g) !== g) throw new Error("decayOn weight must not touch the gradient");
  layer.decayWeight(0.1);
  layer.endStep();
  const m = prune24(matrix(OUT, IN, W0)).mask;
  const want = W0.map((w, i) => w - 0.1 * 0.5 * (1 - m[i]) * w);
  assertClose(await be.read(layer.weight.value), want, { atol: 1e-7, rtol: 1e-6 }, "decayed W");
});

Deno.test("SparseLinear: the transposable mask changes only at refresh steps; flips are counted", async () => {
  const be = new ReferenceBackend();
  const layer = testLayer(be, { method: "t-sr-ste", maskRefresh: 3 });
  let previous: Uint8Array | undefined;
  for (let step = 0; step < 8; step++) {
    // A new weight every step, so a fresh mask would differ.
    const w = normal(100 + step, 1, OUT * IN, 1);
    const flips = await stepWithWeight(be, layer, step, w);
    const mask = Uint8Array.from((await layer.saveState()).mask!);
    if (step % 3 === 0) {
      if (flips === undefined) throw new Error(`step ${step}: expected a refresh`);
      assertEqualArrays(mask, transposableMask24(matrix(OUT, IN, w)).mask, `mask at ${step}`);
      const want = previous === undefined ? 0 : flipCount(previous, mask);
      assertEqualArrays(await be.read(flips), [want], `flips at ${step}`);
      if (step > 0 && want === 0) throw new Error("the test weights should move the mask");
    } else {
      if (flips !== undefined) throw new Error(`step ${step}: unexpected refresh`);
      assertEqualArrays(mask, previous!, `mask at ${step} (no refresh)`);
    }
    previous = mask;
    be.release();
  }
});

Deno.test("SparseLinear: S-STE β is frozen after init; mse-dynamic, l1 and none recipes", async () => {
  const be = new ReferenceBackend();
  const w0 = matrix(OUT, IN, W0);
  const make = (betaRecipe: SparseOptions["betaRecipe"]) =>
    testLayer(be, { method: "s-ste", betaRecipe });
  const cases = [
    { recipe: "mse-frozen", initial: ssteScale(w0), dynamic: false },
    { recipe: "mse-dynamic", initial: ssteScale(w0), dynamic: true },
    { recipe: "l1", initial: ssteScale(w0, { recipe: "l1" }), dynamic: false },
    { recipe: "none", initial: 1, dynamic: false },
  ] as const;
  for (const { recipe, initial, dynamic } of cases) {
    const layer = make(recipe);
    await layer.initialize();
    assertClose([layer.beta], [initial], { atol: 0, rtol: 1e-6 }, `${recipe}: initial β`);
    for (let step = 0; step < 3; step++) {
      const w = normal(200 + step, 1, OUT * IN, 1 + step);
      await stepWithWeight(be, layer, step, w);
      const want = dynamic ? ssteScale(matrix(OUT, IN, w)) : initial;
      assertClose([layer.beta], [want], { atol: 0, rtol: 1e-6 }, `${recipe}: β at step ${step}`);
    }
    be.release();
  }
});

Deno.test("SparseLinear: hard-mask flip counts for STE (first computation reports 0)", async () => {
  const be = new ReferenceBackend();
  const layer = testLayer(be, { method: "ste" });
  let previous: Uint8Array | undefined;
  for (let step = 0; step < 3; step++) {
    const w = normal(300 + step, 1, OUT * IN, 1);
    const flips = await stepWithWeight(be, layer, step, w);
    const mask = prune24(matrix(OUT, IN, w)).mask;
    const want = previous === undefined ? 0 : flipCount(previous, mask);
    assertEqualArrays(await be.read(flips!), [want], `flips at step ${step}`);
    previous = mask;
  }
});

Deno.test("SparseLinear: MVUE needs a token count that is a multiple of 4", async () => {
  const be = new ReferenceBackend();
  const layer = testLayer(be, { method: "t-sr-ste" });
  await layer.beginStep({ step: 0, seed: 1, phase: "sparse" });
  const tape = new Tape(be);
  const x = new Variable(be.full([6, IN], 1), { requiresGrad: true });
  let message = "";
  try {
    layer.forward(tape, x);
  } catch (e) {
    if (e instanceof RangeError) message = e.message;
  }
  if (!/token count must be a multiple of 4, got 6/.test(message)) {
    throw new Error(`expected a RangeError naming the token count, got "${message}"`);
  }
});

Deno.test("SparseLinear: evaluation outside a step; recording outside a step throws", async () => {
  const be = new ReferenceBackend();
  const layer = testLayer(be, { method: "ste" });
  const x = new Variable(be.tensor(X0, [T, IN]));
  const z = await be.read(layer.forward(new Tape(be, { recording: false }), x).value);
  assertClose(z, expected({ method: "ste" }).z.data, TOL, "evaluation Z");
  const zDense = await be.read(
    layer.forward(new Tape(be, { recording: false }), x, { dense: true }).value,
  );
  assertClose(zDense, expected({ method: "dense" }).z.data, TOL, "dense evaluation Z");
  let threw = false;
  try {
    layer.forward(new Tape(be), x);
  } catch (e) {
    threw = /outside a training step/.test((e as Error).message);
  }
  if (!threw) throw new Error("recording outside a step should throw");
});

Deno.test("SparseLinear: shapes that do not allow 2:4 groups are rejected", () => {
  const be = new ReferenceBackend();
  const make = (inFeatures: number, outFeatures: number, sparse: SparseOptions) => () =>
    new SparseLinear(be, "bad.weight", new Float32Array(inFeatures * outFeatures), {
      inFeatures,
      outFeatures,
    }, { sparse, layerIndex: 0 });
  const cases: [() => unknown, RegExp][] = [
    [make(10, 8, { method: "ste" }), /input width must be a multiple of 4, got 10/],
    [make(8, 6, { method: "t-sr-ste" }), /output width to be a multiple of 4, got 6/],
    [make(8, 6, { method: "ste", mvueOnWeight: true }), /output width to be a multiple of 4/],
  ];
  for (const [fn, pattern] of cases) {
    let message = "";
    try {
      fn();
    } catch (e) {
      if (e instanceof RangeError) message = e.message;
    }
    if (!pattern.test(message)) throw new Error(`expected ${pattern}, got "${message}"`);
  }
  make(8, 6, { method: "ste" })(); // ste needs only in % 4 == 0
});

Deno.test("resolveSparseOptions: defaults, idempotence and rejected options", () => {
  const t = resolveSparseOptions({ method: "t-sr-ste+df" });
  if (t.denseFraction !== 1 / 6 || t.maskRefresh !== 40 || t.alpha !== 6e-5 || !t.mvue || t.fp8) {
    throw new Error(`unexpected t-sr-ste+df defaults ${JSON.stringify(t)}`);
  }
  const s = resolveSparseOptions({ method: "sr-ste" });
  if (s.lambdaW !== 2e-4 || s.decayOn !== "gradient" || s.mvue) throw new Error("sr-ste defaults");
  const st = resolveSparseOptions({ method: "step" });
  if (st.preconditionFraction !== 0.1 || st.lambdaW !== 2e-4 || st.mvue || st.fp8) {
    throw new Error(`unexpected step defaults ${JSON.stringify(st)}`);
  }
  const f = resolveSparseOptions({ method: "s-ste+fp8" });
  if (!f.fp8 || !f.mvue || f.betaRecipe !== "mse-frozen") throw new Error("s-ste+fp8 defaults");
  if (JSON.stringify(resolveSparseOptions(t)) !== JSON.stringify(t)) {
    throw new Error("resolving twice changed the options");
  }
  const bad: [unknown, ErrorConstructor, RegExp][] = [
    [{ method: "magic" }, TypeError, /unknown method "magic"/],
    [{ method: "ste", alpha: 0.1 }, TypeError, /option alpha applies to t-sr-ste/],
    [{ method: "ste", typo: 1 }, TypeError, /unknown option "typo"/],
    [{ method: "t-sr-ste", maskRefresh: 0 }, RangeError, /maskRefresh must be a positive integer/],
    [{ method: "t-sr-ste+df", denseFraction: 1 }, RangeError, /denseFraction must be in \[0, 1\)/],
    [{ method: "sr-ste", lambdaW: -1 }, RangeError, /lambdaW must be a finite number >= 0/],
    [{ method: "sr-ste", decayOn: "both" }, TypeError, /decayOn must be/],
    [{ method: "s-ste", betaRecipe: "max" }, TypeError, /betaRecipe must be one of/],
    [{ method: "ste", mvue: "yes" }, TypeError, /mvue must be a boolean/],
    [{ method: "step", preconditionFraction: 0 }, RangeError, /preconditionFraction must be in/],
    [{ method: "sr-ste", preconditionFraction: 0.5 }, TypeError, /applies to step, not to sr-ste/],
  ];
  for (const [options, type, pattern] of bad) {
    let ok = false;
    try {
      resolveSparseOptions(options as SparseOptions);
    } catch (e) {
      ok = e instanceof type && pattern.test((e as Error).message);
      if (!ok) throw new Error(`${JSON.stringify(options)}: unexpected error ${e}`);
    }
    if (!ok) throw new Error(`${JSON.stringify(options)} was accepted`);
  }
});

Deno.test("method traits: the table of SPEC 2.8 and 2.10 decides defaults and which options apply", () => {
  const expected = {
    "dense": "dense/-/-/-/-/none/step",
    "ste": "hard/-/-/-/-/none/step",
    "sr-ste": "hard/-/-/-/-/lambdaW/step",
    "t-sr-ste": "transposable/mvue/-/-/-/alpha/refresh",
    "t-sr-ste+df": "transposable/mvue/-/tail/-/alpha/refresh",
    "s-ste": "soft/mvue/-/-/-/none/step",
    "s-ste+fp8": "soft/mvue/fp8/-/-/none/step",
    "step": "hard/-/-/-/precondition/lambdaW/step",
  };
  for (const method of SPARSE_METHODS) {
    const t = sparseMethodTraits(method);
    const row = [
      t.weight,
      t.mvue ? "mvue" : "-",
      t.fp8 ? "fp8" : "-",
      t.denseTail ? "tail" : "-",
      t.precondition ? "precondition" : "-",
      t.decay,
      t.flipRateUnit,
    ].join("/");
    if (row !== expected[method]) throw new Error(`${method}: ${row} != ${expected[method]}`);
    const resolved = resolveSparseOptions({ method });
    if (resolved.mvue !== t.mvue || resolved.fp8 !== t.fp8) {
      throw new Error(`${method}: resolved defaults disagree with the traits`);
    }
    // Method-specific options are accepted exactly where the traits say they apply.
    const cases: [boolean, SparseOptions][] = [
      [t.decay === "alpha", { method, alpha: 1e-3 }],
      [t.weight === "transposable", { method, maskRefresh: 3 }],
      [t.denseTail, { method, denseFraction: 0.5 }],
      [t.decay === "lambdaW", { method, lambdaW: 1e-3 }],
      [t.weight === "soft", { method, betaRecipe: "l1" }],
      [t.precondition, { method, preconditionFraction: 0.5 }],
    ];
    for (const [applies, options] of cases) {
      let accepted = true;
      try {
        resolveSparseOptions(options);
      } catch (e) {
        if (!(e instanceof TypeError)) throw e;
        accepted = false;
      }
      if (accepted !== applies) {
        throw new Error(`${JSON.stringify(options)}: accepted ${accepted}, expected ${applies}`);
      }
    }
  }
  if (Object.keys(SPARSE_METHOD_TRAITS).join() !== SPARSE_METHODS.join()) {
    throw new Error("the traits table and SPARSE_METHODS list different methods");
  }
  let threw = false;
  try {
    sparseMethodTraits("sparse" as never);
  } catch (e) {
    threw = e instanceof TypeError && e.message.includes('unknown method "sparse"');
  }
  if (!threw) throw new Error("an unknown method was given traits");
});
