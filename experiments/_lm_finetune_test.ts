/**
 * The fine-tuning protocol of P1 and P2 Table 6 (SPEC §6) on a tiny GPT-2 and the reference
 * backend: a T-SR-STE+DF checkpoint (and every non-S-STE one) fine-tunes exactly as a plain dense
 * model with its weights; an S-STE checkpoint fine-tunes with its pre-trained β·S(W) in the
 * forward and a plain backward (the gradients of a dense model whose weights are β·S(W)).
 */

import { finetuneModel, finetuneProtocol } from "./_lm_finetune.ts";
import { ReferenceBackend } from "../core/reference_backend.ts";
import { type Batch, GPT, type GPTConfig, gptConfig } from "../core/gpt2.ts";
import { SPARSE_METHODS, sparseMethodTraits, type SparseOptions } from "../core/sparse.ts";
import { Trainer, type TrainerConfig } from "../core/trainer.ts";
import { loadWeights, saveCheckpoint } from "../core/checkpoint.ts";
import { assert, assertEqualArrays } from "../reference/testing.ts";

const CLASSES = 3;
const PRETRAIN: TrainerConfig = {
  totalSteps: 6,
  peakLr: 1e-2,
  warmupSteps: 1,
  minLr: 1e-3,
  seed: 5,
};
const FINETUNE: TrainerConfig = {
  totalSteps: 4,
  peakLr: 1e-2,
  warmupSteps: 1,
  minLr: 1e-3,
  seed: 9,
  captureGradients: true,
};

/** An LM batch (pre-training) and a classification batch (fine-tuning) of the tiny model. */
const lmBatch: Batch = {
  tokens: Int32Array.from({ length: 16 }, (_, i) => (i * 7 + 3) % 32),
  targets: Int32Array.from({ length: 16 }, (_, i) => (i * 5 + 1) % 32),
  batchSize: 2,
};
const classBatch: Batch = {
  tokens: Int32Array.from({ length: 32 }, (_, i) => (i * 11 + 2) % 32),
  targets: Int32Array.from([0, 2, 1, 2]),
  batchSize: 4,
};

/** Pre-trains the tiny model with `sparse` for all of PRETRAIN's steps; returns its checkpoint. */
async function pretrain(be: ReferenceBackend, sparse: SparseOptions, dir: string) {
  const config = gptConfig("tiny", { sparse });
  const trainer = new Trainer(await GPT.create(be, config, { seed: 1 }), PRETRAIN);
  for (let s = 0; s < PRETRAIN.totalSteps; s++) await trainer.trainStep(lmBatch);
  const path = `${dir}/${sparse.method}.safetensors`;
  await saveCheckpoint(path, trainer);
  return { config, path, trainer };
}

/** Two fine-tuning steps; the raw and applied gradients of each, and the weights after. */
async function finetuneSteps(model: GPT) {
  const trainer = new Trainer(model, FINETUNE);
  const grads: Map<string, Float32Array>[] = [];
  for (let s = 0; s < 2; s++) {
    await trainer.trainStep(classBatch);
    grads.push(trainer.lastGradients!, trainer.lastAppliedGradients!);
  }
  const params = model.parameters();
  const values = await model.backend.readMany(params.map((p) => p.value));
  return { grads, weights: new Map(params.map((p, i) => [p.name, values[i]])) };
}

function assertSameMaps(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string) {
  assert(a.size === b.size && a.size > 0, `${what}: ${a.size} vs ${b.size} tensors`);
  for (const [name, x] of a) {
    const y = b.get(name);
    assert(y !== undefined, `${what}: ${name} missing`);
    assertEqualArrays(x, y, `${what} ${name}`);
  }
}

function differs(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  for (const [name, x] of a) {
    const y = b.get(name)!;
    if (x.some((v, i) => v !== y[i])) return true;
  }
  return false;
}

const headNames = (m: GPT) =>
  m.parameters().filter((p) => p.name.startsWith("classifier")).map((p) => p.name);

/** A plain dense classification model with the checkpoint's weights (the same head seed). */
async function plainDense(be: ReferenceBackend, config: GPTConfig, path: string) {
  const dense = gptConfig("tiny", { ...config, sparse: { method: "dense" }, numClasses: CLASSES });
  const model = await GPT.create(be, dense, { seed: 9 });
  await loadWeights(path, model, { allowMissing: headNames(model) });
  return model;
}

Deno.test("finetuneProtocol: S-STE keeps β·S(W) with a plain backward; every other method is dense", () => {
  for (const method of SPARSE_METHODS) {
    const p = finetuneProtocol({ method });
    if (sparseMethodTraits(method).weight === "soft") {
      assert(p.sparse.method === method && !p.evalDense, `${method}: soft weights, evaluated 2:4`);
      assert(p.sparse.mvue === false && p.sparse.fp8 === false, `${method}: no MVUE, no FP8`);
      assert(p.sparse.mvueOnWeight === false, `${method}: no MVUE on the weight`);
    } else {
      assert(p.sparse.method === "dense" && p.evalDense, `${method}: dense, evaluated dense`);
    }
  }
  const l1 = finetuneProtocol({ method: "s-ste", betaRecipe: "l1" });
  assert(l1.sparse.betaRecipe === "l1", "S-STE keeps its β recipe");
});

Deno.test("finetuneModel: a T-SR-STE+DF checkpoint (and STE, SR-STE, T-SR-STE) fine-tunes plain dense", async () => {
  const be = new ReferenceBackend();
  const dir = await Deno.makeTempDir();
  try {
    for (
      const sparse of [
        { method: "t-sr-ste+df", maskRefresh: 2, alpha: 1e-2 },
        { method: "t-sr-ste", maskRefresh: 2, alpha: 1e-2 },
        { method: "sr-ste" },
        { method: "ste" },
      ] as SparseOptions[]
    ) {
      const { config, path, trainer } = await pretrain(be, sparse, dir);
      if (sparseMethodTraits(sparse.method).denseTail) {
        assert(trainer.phase === "dense", `${sparse.method} pre-training ended in its dense phase`);
      }
      const { model, evalDense } = await finetuneModel(be, {
        model: config,
        checkpoint: path,
        classes: CLASSES,
        seed: 9,
      });
      assert(evalDense, `${sparse.method} is evaluated dense`);
      const got = await finetuneSteps(model);
      const want = await finetuneSteps(await plainDense(be, config, path));
      got.grads.forEach((g, i) =>
        assertSameMaps(g, want.grads[i], `${sparse.method} gradients ${i}`)
      );
      assertSameMaps(got.weights, want.weights, `${sparse.method} weights after two steps`);
      // The old protocol (a fresh trainer of the pre-training method, sparse from step 0) trains
      // differently, so the comparison above can fail.
      const old = await GPT.create(be, { ...config, numClasses: CLASSES }, { seed: 9 });
      await loadWeights(path, old, { allowMissing: headNames(old) });
      const oldRun = await finetuneSteps(old);
      assert(differs(oldRun.weights, want.weights), `${sparse.method}: sparse fine-tune differs`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("finetuneModel: S-STE fine-tunes with its pre-trained β·S(W) and a plain backward", async () => {
  const be = new ReferenceBackend();
  const dir = await Deno.makeTempDir();
  try {
    for (const method of ["s-ste", "s-ste+fp8"] as const) {
      const { config, path, trainer } = await pretrain(be, { method }, dir);
      const betas = trainer.model.sparseLayers().map((l) => l.beta);
      const { model, evalDense } = await finetuneModel(be, {
        model: config,
        checkpoint: path,
        classes: CLASSES,
        seed: 9,
      });
      assert(!evalDense, `${method} is evaluated with its 2:4 weights`);
      model.sparseLayers().forEach((l, i) => {
        assert(l.beta === betas[i], `${method} ${l.name}: β ${l.beta}, pre-trained ${betas[i]}`);
      });
      // The reference: a dense model whose linear weights are β·S_soft(W) of the checkpoint. With
      // a plain straight-through backward, ∇W of S-STE is ∇W̃ of this model (MVUE or FP8 would
      // change it); the first step's gradients therefore agree bit for bit.
      const reference = await plainDense(be, config, path);
      const layers = model.sparseLayers();
      reference.sparseLayers().forEach((layer, i) => {
        const { pruned, mask } = be.softThreshold24(layers[i].weight.value);
        const scaled = be.scale(pruned, layers[i].beta);
        be.assign(layer.weight.value, scaled);
        for (const t of [pruned, mask, scaled]) be.dispose(t);
      });
      const evalGot = await model.evaluate(classBatch, { dense: evalDense });
      const evalWant = await reference.evaluate(classBatch);
      assert(evalGot === evalWant, `${method}: 2:4 evaluation ${evalGot} vs β·S(W) ${evalWant}`);
      const t1 = new Trainer(model, FINETUNE), t2 = new Trainer(reference, FINETUNE);
      await t1.trainStep(classBatch);
      await t2.trainStep(classBatch);
      assertSameMaps(t1.lastGradients!, t2.lastGradients!, `${method} raw gradients`);
      // The pre-training method itself (MVUE on ∇Zᵀ, FP8 for s-ste+fp8) gives other gradients.
      const old = await GPT.create(be, { ...config, numClasses: CLASSES }, { seed: 9 });
      await loadWeights(path, old, { allowMissing: headNames(old) });
      const t3 = new Trainer(old, FINETUNE);
      await t3.trainStep(classBatch);
      assert(
        differs(t3.lastGradients!, t2.lastGradients!),
        `${method}: MVUE changes the gradients`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
