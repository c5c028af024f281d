/**
 * The optimizer step (SPEC §4 order) on a tiny GPT-2 with the reference backend: loss falls for
 * every method; the dense switch, mask refreshes, β and flip rates happen when and as specified;
 * the gradient AdamW consumes is clip·g + masked decay; a non-finite loss leaves the model alone.
 */

import { ReferenceBackend } from "./reference_backend.ts";
import { type Batch, GPT, gptConfig } from "./gpt2.ts";
import { SPARSE_METHODS, type SparseOptions } from "./sparse.ts";
import { Trainer, type TrainerConfig } from "./trainer.ts";
import { assertClose, assertEqualArrays } from "./grad_check.ts";
import { makeBatch } from "./train_testing.ts";
import { assertRejects } from "../reference/testing.ts";
import { matrix } from "../reference/matrix.ts";
import { prune24 } from "../reference/prune.ts";
import { transposableMask24 } from "../reference/transposable.ts";
import { flipCount } from "../reference/flip_rate.ts";
import { cosineLr } from "./schedule.ts";

const BATCH = makeBatch(2, 8, 32, 1);
const RUN: TrainerConfig = { totalSteps: 30, peakLr: 1e-2, warmupSteps: 2, minLr: 1e-3, seed: 7 };

async function makeTrainer(
  sparse: SparseOptions,
  run: Partial<TrainerConfig> = {},
  be = new ReferenceBackend(),
): Promise<Trainer> {
  const model = await GPT.create(be, gptConfig("tiny", { sparse }), { seed: 1 });
  return new Trainer(model, { ...RUN, ...run });
}

async function weightsOf(trainer: Trainer): Promise<Map<string, Float32Array>> {
  const params = trainer.model.parameters();
  const values = await trainer.model.backend.readMany(params.map((p) => p.value));
  return new Map(params.map((p, i) => [p.name, values[i]]));
}

Deno.test("Trainer: the loss of a tiny GPT-2 falls over 30 steps for every method", async () => {
  for (const method of SPARSE_METHODS) {
    const sparse: SparseOptions = method.startsWith("t-sr-ste")
      ? { method, maskRefresh: 10 }
      : { method };
    const trainer = await makeTrainer(sparse);
    const losses: number[] = [];
    for (let s = 0; s < 30; s++) losses.push((await trainer.trainStep(BATCH)).loss);
    const first = losses[0], last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    if (!(last < 0.6 * first)) {
      throw new Error(`${method}: loss ${first} → ${last} (${losses.map((l) => l.toFixed(2))})`);
    }
  }
});

Deno.test("Trainer: t-sr-ste+df switches to dense at totalSteps − round(total/6) and stays dense", async () => {
  const trainer = await makeTrainer({ method: "t-sr-ste+df" }, { totalSteps: 12 });
  if (trainer.denseSwitchStep !== 10) throw new Error(`switch step ${trainer.denseSwitchStep}`);
  const model = trainer.model;
  for (let s = 0; s < 12; s++) {
    const sparseLoss = await model.evaluate(BATCH);
    const denseLoss = await model.evaluate(BATCH, { dense: true });
    model.backend.release();
    const r = await trainer.trainStep(BATCH);
    const wantPhase = s < 10 ? "sparse" : "dense";
    if (r.phase !== wantPhase || trainer.phase !== wantPhase) {
      throw new Error(`step ${s}: phase ${r.phase}, expected ${wantPhase}`);
    }
    // The step's forward is the sparse model before the switch and the dense one after.
    const want = s < 10 ? sparseLoss : denseLoss;
    if (r.loss !== want) throw new Error(`step ${s}: loss ${r.loss}, expected ${want}`);
    if (s === 10 && r.flipRate !== 0) throw new Error("the first dense-phase mask should report 0");
    if (s === 11 && r.flipRate === null) throw new Error("the dense phase tracks the hard mask");
  }
  if ((await makeTrainer({ method: "ste" })).denseSwitchStep !== undefined) {
    throw new Error("only t-sr-ste+df switches");
  }
});

Deno.test("Trainer: STEP trains dense, then freezes the sparse layers' variance and trains 2:4", async () => {
  const trainer = await makeTrainer({ method: "step", preconditionFraction: 0.25 }, {
    totalSteps: 12,
  });
  if (trainer.preconditionSteps !== 3) throw new Error(`switch ${trainer.preconditionSteps}`);
  const model = trainer.model, be = model.backend;
  const sparseNames = new Set(model.sparseLayers().map((l) => l.name));
  let frozen: Map<string, Float32Array> | undefined;
  for (let s = 0; s < 12; s++) {
    const sparseLoss = await model.evaluate(BATCH);
    const denseLoss = await model.evaluate(BATCH, { dense: true });
    be.release();
    const r = await trainer.trainStep(BATCH);
    const wantPhase = s < 3 ? "dense" : "sparse";
    if (r.phase !== wantPhase) throw new Error(`step ${s}: phase ${r.phase}`);
    // Before the switch the forward is the dense model; from it on the hard 2:4 one.
    if (s !== 3 && r.loss !== (s < 3 ? denseLoss : sparseLoss)) {
      throw new Error(`step ${s}: loss ${r.loss} is not the ${wantPhase} model's`);
    }
    const params = model.parameters();
    const vs = await be.readMany(params.map((p) => trainer.optimizer.moments(p.name).v));
    const now = new Map(params.map((p, i) => [p.name, vs[i]]));
    if (s === 2) frozen = now; // v after the last dense update
    if (s >= 3) {
      for (const [name, v] of now) {
        const same = v.every((x, i) => x === frozen!.get(name)![i]);
        if (sparseNames.has(name) !== same) {
          throw new Error(`step ${s}: ${name}'s variance ${same ? "stayed" : "moved"}`);
        }
        const at = trainer.optimizer.varianceFrozenAt(name);
        if (at !== (sparseNames.has(name) ? 3 : undefined)) {
          throw new Error(`${name} frozen at ${at}`);
        }
      }
    }
  }
  const short = await makeTrainer({ method: "step", preconditionFraction: 0.01 }, {
    totalSteps: 12,
  });
  if (short.preconditionSteps !== 1) throw new Error("the precondition phase has at least a step");
  await assertRejects(
    () =>
      makeTrainer({ method: "step", preconditionFraction: 0.9 }, { totalSteps: 2, warmupSteps: 1 }),
    RangeError,
    "precondition phase must be 1 to totalSteps − 1 steps, got 2 of 2",
  );
});

Deno.test("Trainer: the transposable mask changes only at refresh steps", async () => {
  const trainer = await makeTrainer({ method: "t-sr-ste", maskRefresh: 3 }, { totalSteps: 8 });
  const layers = trainer.model.sparseLayers();
  let previous: Uint8Array[] | undefined;
  let moved = false;
  for (let s = 0; s < 8; s++) {
    const before = await weightsOf(trainer);
    const r = await trainer.trainStep(BATCH);
    const masks = await Promise.all(
      layers.map(async (l) => Uint8Array.from((await l.saveState()).mask!)),
    );
    if (s % 3 === 0) {
      if (r.flipRate === null) throw new Error(`step ${s}: expected a refresh`);
      let flips = 0, entries = 0;
      layers.forEach((l, i) => {
        const [rows, cols] = l.weight.value.shape;
        const want = transposableMask24(matrix(rows, cols, before.get(l.name)!)).mask;
        assertEqualArrays(masks[i], want, `step ${s}: mask of ${l.name}`);
        const n = previous === undefined ? 0 : flipCount(previous[i], masks[i]);
        assertClose(
          [r.flipRateByLayer[l.name]],
          [n / l.maskSize],
          { atol: 0, rtol: 1e-12 },
          "layer rate",
        );
        flips += n;
        entries += l.maskSize;
        if (n > 0) moved = true;
      });
      assertClose(
        [r.flipRate],
        [flips / entries],
        { atol: 0, rtol: 1e-12 },
        `step ${s}: flip rate`,
      );
    } else {
      if (r.flipRate !== null || Object.keys(r.flipRateByLayer).length !== 0) {
        throw new Error(`step ${s}: no mask should be computed between refreshes`);
      }
      masks.forEach((m, i) => assertEqualArrays(m, previous![i], `step ${s}: mask kept`));
    }
    previous = masks;
  }
  if (!moved) throw new Error("the test should move the transposable mask at some refresh");
});

Deno.test("Trainer: global and per-layer flip rates of STE's hard mask", async () => {
  const trainer = await makeTrainer({ method: "ste" });
  const layers = trainer.model.sparseLayers();
  let previous: Uint8Array[] | undefined;
  let moved = false;
  for (let s = 0; s < 4; s++) {
    const before = await weightsOf(trainer);
    const masks = layers.map((l) => {
      const [rows, cols] = l.weight.value.shape;
      return prune24(matrix(rows, cols, before.get(l.name)!)).mask;
    });
    const r = await trainer.trainStep(BATCH);
    let flips = 0, entries = 0;
    layers.forEach((l, i) => {
      const n = previous === undefined ? 0 : flipCount(previous[i], masks[i]);
      if (r.flipRateByLayer[l.name] !== n / l.maskSize) {
        throw new Error(
          `step ${s}: ${l.name} rate ${r.flipRateByLayer[l.name]} vs ${n / l.maskSize}`,
        );
      }
      flips += n;
      entries += l.maskSize;
    });
    if (r.flipRate !== flips / entries) throw new Error(`step ${s}: global rate ${r.flipRate}`);
    if (flips > 0) moved = true;
    previous = masks;
  }
  // Step 0 has lr 0, so the step-1 mask equals the step-0 mask; later steps flip entries.
  if (!moved) throw new Error("STE at lr 1e-2 should flip some mask entries");
});

Deno.test("Trainer: S-STE β stays frozen over steps; mse-dynamic changes it every step", async () => {
  for (const betaRecipe of ["mse-frozen", "mse-dynamic"] as const) {
    const trainer = await makeTrainer({ method: "s-ste", betaRecipe });
    const betas = [trainer.model.sparseLayers().map((l) => l.beta)];
    for (let s = 0; s < 4; s++) {
      await trainer.trainStep(BATCH);
      betas.push(trainer.model.sparseLayers().map((l) => l.beta));
    }
    for (let s = 1; s < betas.length; s++) {
      betas[s].forEach((b, i) => {
        const same = b === betas[s - 1][i];
        if (betaRecipe === "mse-frozen" && !same) throw new Error(`β changed at step ${s - 1}`);
        // Steps 0 and 1 see the initial weights (step 0 has lr 0); later steps see moved weights.
        if (betaRecipe === "mse-dynamic" && s > 2 && same) {
          throw new Error(`dynamic β did not change at step ${s - 1}`);
        }
      });
    }
    if (!betas[0].every((b) => b > 1.2 && b < 1.8)) {
      throw new Error(`β of Gaussian init ${betas[0]}`);
    }
  }
});

Deno.test("Trainer: AdamW consumes clip·g plus the masked decay (decay after clipping)", async () => {
  const cases: { sparse: SparseOptions; rate: number; mask: "transposable" | "hard" | "none" }[] = [
    { sparse: { method: "t-sr-ste", alpha: 0.05 }, rate: 0.05, mask: "transposable" },
    { sparse: { method: "sr-ste", lambdaW: 0.03 }, rate: 0.03, mask: "hard" },
    { sparse: { method: "sr-ste", lambdaW: 0.03, decayOn: "weight" }, rate: 0, mask: "none" },
    { sparse: { method: "s-ste" }, rate: 0, mask: "none" },
  ];
  for (const { sparse, rate, mask } of cases) {
    const trainer = await makeTrainer(sparse, { gradClip: 0.01, captureGradients: true });
    const before = await weightsOf(trainer);
    const r = await trainer.trainStep(BATCH);
    const factor = 0.01 / (r.gradNorm + 1e-6);
    if (!(factor < 0.5)) throw new Error(`the test needs active clipping, factor ${factor}`);
    const layers = new Map(trainer.model.sparseLayers().map((l) => [l.name, l]));
    for (const [name, raw] of trainer.lastGradients!) {
      const w = before.get(name)!;
      const layer = layers.get(name);
      let want = raw.map((g) => factor * g);
      if (layer !== undefined && mask !== "none") {
        const [rows, cols] = layer.weight.value.shape;
        const m = mask === "transposable"
          ? transposableMask24(matrix(rows, cols, w)).mask
          : prune24(matrix(rows, cols, w)).mask;
        want = want.map((g, i) => g + rate * (1 - m[i]) * w[i]);
      }
      assertClose(
        trainer.lastAppliedGradients!.get(name)!,
        want,
        { atol: 1e-9, rtol: 1e-5 },
        `${sparse.method}: gradient AdamW consumed for ${name}`,
      );
    }
  }
});

Deno.test("Trainer: clipping inside AdamW updates exactly as a separate scale pass", async () => {
  // captureGradients keeps the separate scale pass; without it AdamW applies the clip factor.
  for (
    const sparse of [{ method: "dense" }, { method: "t-sr-ste" }, { method: "s-ste" }] as const
  ) {
    const fused = await makeTrainer(sparse, { gradClip: 0.01 });
    const separate = await makeTrainer(sparse, { gradClip: 0.01, captureGradients: true });
    for (let s = 0; s < 2; s++) {
      const [a, b] = [await fused.trainStep(BATCH), await separate.trainStep(BATCH)];
      if (!(0.01 / (a.gradNorm + 1e-6) < 0.5)) throw new Error("the test needs active clipping");
      assertEqualArrays([a.loss], [b.loss], `${sparse.method} step ${s}: loss`);
    }
    const [wa, wb] = [await weightsOf(fused), await weightsOf(separate)];
    for (const [name, w] of wa) assertEqualArrays(w, wb.get(name)!, `${sparse.method}: ${name}`);
  }
});

Deno.test("Trainer: decoupled SR-STE decay is applied after AdamW", async () => {
  // Same run with and without the decoupled decay: after one step the decayed run's weight must be
  // W_ste − lr·λ_W·(1−M)⊙W_ste, M the step's hard mask.
  const run = { warmupSteps: 1 };
  const lr = cosineLr(1, { ...RUN, ...run });
  const plain = await makeTrainer({ method: "sr-ste", lambdaW: 0 }, run);
  const decayed = await makeTrainer({ method: "sr-ste", lambdaW: 0.5, decayOn: "weight" }, run);
  for (const t of [plain, decayed]) await t.trainStep(BATCH); // step 0 has lr 0
  const before = await weightsOf(plain);
  const a = await plain.trainStep(BATCH), b = await decayed.trainStep(BATCH);
  if (a.lr !== lr || b.lr !== lr) throw new Error(`lr ${a.lr} vs ${lr}`);
  const wPlain = await weightsOf(plain), wDecayed = await weightsOf(decayed);
  for (const layer of plain.model.sparseLayers()) {
    const [rows, cols] = layer.weight.value.shape;
    const m = prune24(matrix(rows, cols, before.get(layer.name)!)).mask;
    const w = wPlain.get(layer.name)!;
    const want = w.map((v, i) => v - lr * 0.5 * (1 - m[i]) * v);
    assertClose(wDecayed.get(layer.name)!, want, { atol: 1e-9, rtol: 1e-6 }, layer.name);
  }
});

Deno.test("Trainer: reported lr follows the schedule; step counter advances", async () => {
  const trainer = await makeTrainer({ method: "dense" }, { totalSteps: 6, warmupSteps: 2 });
  for (let s = 0; s < 6; s++) {
    const r = await trainer.trainStep(BATCH);
    if (r.step !== s || trainer.step !== s + 1) throw new Error(`step ${r.step}/${trainer.step}`);
    if (r.lr !== cosineLr(s, { ...RUN, totalSteps: 6, warmupSteps: 2 })) throw new Error("lr");
  }
});

Deno.test("Trainer: a non-finite gradient norm throws and leaves weights, moments and step unchanged", async () => {
  const trainer = await makeTrainer({ method: "dense" });
  await trainer.trainStep(BATCH);
  const be = trainer.model.backend;
  const wte = trainer.model.parameters()[0];
  // A huge final-norm scale: finite logits and loss, but a gradient whose square overflows f32.
  const lnF = trainer.model.lnF.weight;
  be.assign(lnF.value, be.full(lnF.value.shape, 1e20));
  const before = await weightsOf(trainer);
  const m = await be.read(trainer.optimizer.moments(wte.name).m);
  let message = "";
  try {
    await trainer.trainStep(BATCH as Batch);
  } catch (e) {
    if (e instanceof RangeError) message = e.message;
  }
  if (
    !/Cannot take optimizer step 1: the loss is .* and the gradient norm Infinity/.test(message)
  ) {
    throw new Error(`expected a RangeError for the infinite gradient norm, got "${message}"`);
  }
  if (trainer.step !== 1) throw new Error("the step counter moved");
  const after = await weightsOf(trainer);
  for (const [name, w] of before) assertEqualArrays(after.get(name)!, w, name);
  assertEqualArrays(await be.read(trainer.optimizer.moments(wte.name).m), m, "moments");
  // Lagged: the result rejects with the same error; AdamW moved nothing, the counter went on.
  const { result } = await trainer.enqueueStep(BATCH as Batch);
  const lagged = await result.then(() => "", (e) => e instanceof RangeError ? e.message : "");
  if (!/Cannot take optimizer step 1: .* gradient norm Infinity/.test(lagged)) {
    throw new Error(`expected the lagged result to reject for the infinite norm, got "${lagged}"`);
  }
  const stepAfter: number = trainer.step;
  if (stepAfter !== 2) throw new Error("the lagged step did not advance the counter");
  const afterLagged = await weightsOf(trainer);
  for (const [name, w] of before) assertEqualArrays(afterLagged.get(name)!, w, name);
});

Deno.test("Trainer: invalid run configurations are rejected", async () => {
  const model = await GPT.create(new ReferenceBackend(), gptConfig("tiny"), { seed: 1 });
  const bad: [Partial<TrainerConfig>, RegExp][] = [
    [{ seed: -1 }, /seed must be an integer/],
    [{ gradClip: 0 }, /gradClip must be positive/],
    [{ warmupSteps: 30 }, /warmupSteps must be an integer in \[0, totalSteps = 30\)/],
    [{ minLr: 1 }, /minLr <= peakLr/],
  ];
  for (const [override, pattern] of bad) {
    let ok = false;
    try {
      new Trainer(model, { ...RUN, ...override });
    } catch (e) {
      ok = e instanceof RangeError && pattern.test(e.message);
      if (!ok) throw new Error(`unexpected error ${e}`);
    }
    if (!ok) throw new Error(`${JSON.stringify(override)} was accepted`);
  }
});

Deno.test("Trainer: dropout draws are determined by the seed and the step", async () => {
  const make = async (seed: number) => {
    const model = await GPT.create(
      new ReferenceBackend(),
      gptConfig("tiny", { dropout: 0.2, sparse: { method: "s-ste" } }),
      { seed: 1 },
    );
    return new Trainer(model, { ...RUN, seed });
  };
  const [a, b, c] = [await make(3), await make(3), await make(4)];
  const evalLoss = await a.model.evaluate(BATCH);
  const ra = await a.trainStep(BATCH), rb = await b.trainStep(BATCH), rc = await c.trainStep(BATCH);
  if (ra.loss !== rb.loss) throw new Error("same seed and step gave different dropout");
  if (ra.loss === rc.loss) throw new Error("a different seed gave the same dropout");
  if (ra.loss === evalLoss) throw new Error("training with dropout 0.2 equals evaluation");
  // The next step draws new masks: with the weights of step 0 unchanged (lr 0), only dropout
  // can change the loss.
  const next = await a.trainStep(BATCH);
  if (next.loss === ra.loss) throw new Error("step 1 reused the dropout masks of step 0");
});
