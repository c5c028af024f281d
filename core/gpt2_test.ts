/**
 * GPT-2: configuration, parameters and initialisation, and whole-model gradient checks per method
 * on the reference backend's float64 storage.
 *
 * Gradient checks (tiny model: vocab 32, block 8, 2 layers, width 16, 2 heads; 2 sequences of 6
 * tokens, so 12 tokens, a multiple of 4): every non-sparse parameter's gradient is compared with
 * central finite differences of the loss (eps 1e-6) at 4 entries per tensor; this also checks the
 * input path `∇X` through every sparse layer, since the parameters below them (embeddings,
 * attention, norms) receive their gradient through it. The sparse weights' gradient is what SPEC
 * 2.8 says: for `dense` and the dense phase, FD of the loss w.r.t. W; for `ste`, `sr-ste`,
 * `t-sr-ste` and `s-ste` (with MVUE off), FD of the loss w.r.t. W̃ (a dense model holding W̃); with
 * MVUE on, every other gradient equals the MVUE-off run exactly and the sparse gradient equals it
 * in expectation over seeds. Tolerance `atol 1e-8, rtol 1e-5`: gradients here are 1e-4..1e-1,
 * FD error in float64 is below 1e-9.
 */

import { ReferenceBackend } from "./reference_backend.ts";
import { Tape } from "./autograd.ts";
import { type Batch, GPT, type GPTConfig, gptConfig, resolveGPTConfig } from "./gpt2.ts";
import type { SparseOptions, TrainingPhase } from "./sparse.ts";
import { assertClose, assertEqualArrays } from "./grad_check.ts";
import { makeBatch, modelFiniteDifference, sampleIndices } from "./train_testing.ts";
import { matrix } from "../reference/matrix.ts";
import { prune24 } from "../reference/prune.ts";
import { transposableMask24 } from "../reference/transposable.ts";
import { softThreshold24 } from "../reference/soft_threshold.ts";

const TOL = { atol: 1e-8, rtol: 1e-5 };
const BATCH = makeBatch(2, 6, 32, 1);

interface Gradients {
  loss: number;
  grads: Map<string, Float64Array>;
}

/** One recorded forward/backward inside a step; gradients read as float64. */
async function gradients(
  be: ReferenceBackend,
  model: GPT,
  batch: Batch,
  ctx: { step: number; seed: number; phase: TrainingPhase },
): Promise<Gradients> {
  for (const p of model.parameters()) p.grad = undefined;
  await model.beginStep(ctx);
  const tape = new Tape(be);
  const loss = model.loss(tape, batch);
  tape.backward(loss);
  const grads = new Map(model.parameters().map((p) => [p.name, be.readF64(p.grad!)]));
  const value = be.readF64(loss.value)[0];
  model.endStep();
  for (const p of model.parameters()) p.grad = undefined;
  be.release();
  return { loss: value, grads };
}

function evaluationLoss(be: ReferenceBackend, model: GPT, batch: Batch): () => number {
  return () => be.readF64(model.loss(new Tape(be, { recording: false }), batch).value)[0];
}

function tinyConfig(sparse: SparseOptions, extra: Partial<GPTConfig> = {}): GPTConfig {
  return gptConfig("tiny", { sparse, ...extra });
}

/** FD check of the listed parameters of `model` against `grads`. */
function checkFD(
  be: ReferenceBackend,
  model: GPT,
  grads: Map<string, Float64Array>,
  names: (name: string) => boolean,
  label: string,
  batch: Batch = BATCH,
): void {
  const lossOf = evaluationLoss(be, model, batch);
  model.parameters().filter((p) => names(p.name)).forEach((p, k) => {
    const idx = sampleIndices(p.size, 4, k);
    const fd = modelFiniteDifference(be, p, idx, lossOf);
    const analytic = idx.map((i) => grads.get(p.name)![i]);
    assertClose(analytic, fd, TOL, `${label}: ∂L/∂${p.name}`);
  });
}

const isSparse = (name: string) => /mlp\.c_(fc|proj)\.weight$/.test(name);

/** W̃ of a sparse weight per SPEC 2.8, from the oracles. */
function effective(
  method: SparseOptions["method"],
  w: Float64Array,
  shape: readonly number[],
  beta: number,
) {
  const m = matrix(shape[0], shape[1], w);
  switch (method) {
    case "ste":
    case "sr-ste":
      return prune24(m).pruned.data;
    case "t-sr-ste":
    case "t-sr-ste+df":
      return transposableMask24(m).pruned.data;
    case "s-ste":
    case "s-ste+fp8":
      return Float64Array.from(softThreshold24(m).pruned.data, (v) => v * beta);
    default:
      return m.data;
  }
}

/**
 * Gradient check of one method: non-sparse parameters by FD on the sparse model; sparse weights
 * by FD on a dense model holding W̃.
 */
async function checkMethod(sparse: SparseOptions, phase: TrainingPhase = "sparse"): Promise<void> {
  const label = `${sparse.method}${phase === "dense" ? " (dense phase)" : ""}`;
  const be = new ReferenceBackend({ precision: "f64" });
  const model = await GPT.create(be, tinyConfig(sparse), { seed: 1 });
  const { loss, grads } = await gradients(be, model, BATCH, { step: 0, seed: 9, phase });
  const evalLoss = evaluationLoss(be, model, BATCH)();
  if (phase === "sparse" && loss !== evalLoss) {
    throw new Error(`${label}: training loss ${loss} differs from the evaluation loss ${evalLoss}`);
  }
  checkFD(be, model, grads, (n) => !isSparse(n), label);
  if (phase === "dense" || sparse.method === "dense") {
    checkFD(be, model, grads, isSparse, label);
    return;
  }
  // A dense model holding W̃ in place of every sparse weight: the forward function is the same, so
  // its exact gradient w.r.t. W̃ is what the STE hands to W.
  const dense = await GPT.create(be, tinyConfig({ method: "dense" }), { seed: 1 });
  const layers = new Map(model.sparseLayers().map((l) => [l.name, l]));
  for (const [p, q] of model.parameters().map((p, i) => [p, dense.parameters()[i]] as const)) {
    const w = be.readF64(p.value);
    const layer = layers.get(p.name);
    const values = layer === undefined
      ? w
      : Float64Array.from(effective(sparse.method, w, p.value.shape, layer.beta));
    be.assign(q.value, be.tensor(values, p.value.shape));
  }
  if (Math.abs(evaluationLoss(be, dense, BATCH)() - evalLoss) > 1e-12) {
    throw new Error(`${label}: the dense model holding W̃ computes a different loss`);
  }
  checkFD(be, dense, grads, isSparse, `${label} (w.r.t. W̃)`);
}

Deno.test("GPT-2 gradients: dense", () => checkMethod({ method: "dense" }));
Deno.test("GPT-2 gradients: ste", () => checkMethod({ method: "ste" }));
Deno.test("GPT-2 gradients: sr-ste", () => checkMethod({ method: "sr-ste" }));
Deno.test("GPT-2 gradients: t-sr-ste (MVUE off)", () =>
  checkMethod({ method: "t-sr-ste", mvue: false }));
Deno.test("GPT-2 gradients: s-ste (MVUE off)", () => checkMethod({ method: "s-ste", mvue: false }));
Deno.test("GPT-2 gradients: t-sr-ste+df in its dense phase", () => {
  return checkMethod({ method: "t-sr-ste+df" }, "dense");
});

Deno.test("GPT-2 gradients: with MVUE, other gradients are exact and ∇W is unbiased", async () => {
  for (const method of ["t-sr-ste", "s-ste"] as const) {
    const be = new ReferenceBackend({ precision: "f64" });
    const withMvue = await GPT.create(be, tinyConfig({ method }), { seed: 1 });
    const without = await GPT.create(be, tinyConfig({ method, mvue: false }), { seed: 1 });
    const exact = await gradients(be, without, BATCH, { step: 0, seed: 9, phase: "sparse" });
    const K = 120;
    const sums = new Map<string, { sum: Float64Array; sumSq: Float64Array }>();
    for (let k = 0; k < K; k++) {
      const run = await gradients(be, withMvue, BATCH, {
        step: 0,
        seed: 1000 + k,
        phase: "sparse",
      });
      if (k === 0 && run.loss !== exact.loss) throw new Error(`${method}: MVUE changed the loss`);
      for (const [name, g] of run.grads) {
        if (!isSparse(name)) {
          if (k === 0) assertEqualArrays(g, exact.grads.get(name)!, `${method}: ∂L/∂${name}`);
          continue;
        }
        const acc = sums.get(name) ??
          { sum: new Float64Array(g.length), sumSq: new Float64Array(g.length) };
        g.forEach((v, i) => {
          acc.sum[i] += v;
          acc.sumSq[i] += v * v;
        });
        sums.set(name, acc);
      }
    }
    for (const [name, { sum, sumSq }] of sums) {
      const want = exact.grads.get(name)!;
      let differs = false;
      for (let i = 0; i < want.length; i++) {
        const mean = sum[i] / K;
        const sd = Math.sqrt(Math.max(sumSq[i] / K - mean * mean, 0));
        if (sd > 0) differs = true;
        const bound = 5 * sd / Math.sqrt(K) + 1e-9;
        if (Math.abs(mean - want[i]) > bound) {
          throw new Error(
            `${method}: ${name}[${i}] mean ${mean} vs exact ${want[i]} (bound ${bound})`,
          );
        }
      }
      if (!differs) throw new Error(`${method}: ${name} shows no MVUE noise; is MVUE on?`);
    }
  }
});

Deno.test("GPT-2 gradients: classification head (mean-pooled hidden states)", async () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const model = await GPT.create(be, tinyConfig({ method: "dense" }, { numClasses: 3 }), {
    seed: 2,
  });
  const batch = { ...BATCH, targets: new Int32Array([2, 0]) };
  const logits = model.forward(
    new Tape(be, { recording: false }),
    be.indices(batch.tokens, [12]),
    2,
  );
  if (logits.value.shape.join() !== "2,3") throw new Error(`logits shape [${logits.value.shape}]`);
  const { grads } = await gradients(be, model, batch, { step: 0, seed: 1, phase: "sparse" });
  checkFD(be, model, grads, (n) => /classifier|ln_f|h\.1\.mlp|wte/.test(n), "classifier", batch);
});

Deno.test("GPT-2: nanoGPT parameter names, shapes, order and sparse layers", async () => {
  const be = new ReferenceBackend();
  const model = await GPT.create(be, tinyConfig({ method: "ste" }), { seed: 1 });
  const got = model.parameters().map((p) =>
    `${p.name}:${p.value.shape.join("x")}:${p.weightDecay}`
  );
  const block = (l: number) => [
    `transformer.h.${l}.ln_1.weight:16:false`,
    `transformer.h.${l}.ln_1.bias:16:false`,
    `transformer.h.${l}.attn.c_attn.weight:48x16:true`,
    `transformer.h.${l}.attn.c_proj.weight:16x16:true`,
    `transformer.h.${l}.ln_2.weight:16:false`,
    `transformer.h.${l}.ln_2.bias:16:false`,
    `transformer.h.${l}.mlp.c_fc.weight:64x16:true`,
    `transformer.h.${l}.mlp.c_proj.weight:16x64:true`,
  ];
  const want = [
    "transformer.wte.weight:32x16:false",
    "transformer.wpe.weight:8x16:false",
    ...block(0),
    ...block(1),
    "transformer.ln_f.weight:16:false",
    "transformer.ln_f.bias:16:false",
  ];
  if (got.join("\n") !== want.join("\n")) throw new Error(`parameters:\n${got.join("\n")}`);
  const sparse = model.sparseLayers().map((l) => `${l.layerIndex}:${l.name}`);
  const wantSparse = [0, 1].flatMap((l) => [
    `${2 * l}:transformer.h.${l}.mlp.c_fc.weight`,
    `${2 * l + 1}:transformer.h.${l}.mlp.c_proj.weight`,
  ]);
  if (sparse.join() !== wantSparse.join()) throw new Error(`sparse layers: ${sparse}`);
  if (model.parameterCount !== 512 + 128 + 2 * (32 + 768 + 256 + 32 + 1024 + 1024) + 32) {
    throw new Error(`parameter count ${model.parameterCount}`);
  }
  const attnSparse = await GPT.create(
    be,
    tinyConfig({ method: "ste" }, { sparseSites: ["attn.c_attn"] }),
    { seed: 1 },
  );
  const names = attnSparse.sparseLayers().map((l) => l.name).join();
  if (names !== "transformer.h.0.attn.c_attn.weight,transformer.h.1.attn.c_attn.weight") {
    throw new Error(`configurable sparse sites: ${names}`);
  }
});

Deno.test("GPT-2: initialisation statistics and bit-identical weights from the same seed", async () => {
  const be = new ReferenceBackend();
  const config = gptConfig("tiny", { nLayer: 8, nEmbd: 32, vocabSize: 256 });
  const a = await GPT.create(be, config, { seed: 4 });
  const b = await GPT.create(be, config, { seed: 4 });
  const c = await GPT.create(be, config, { seed: 5 });
  const read = (m: GPT) => be.readMany(m.parameters().map((p) => p.value));
  const [va, vb, vc] = [await read(a), await read(b), await read(c)];
  const names = a.parameters().map((p) => p.name);
  va.forEach((v, i) => assertEqualArrays(v, vb[i], `${names[i]} (same seed)`));
  const residualStd = 0.02 / Math.sqrt(2 * 8);
  const pooled = new Map<string, number[]>();
  names.forEach((name, i) => {
    const kind = name.endsWith("c_proj.weight")
      ? "residual"
      : /ln_.*\.weight$/.test(name)
      ? "one"
      : /\.bias$/.test(name)
      ? "zero"
      : "normal";
    pooled.set(kind, [...(pooled.get(kind) ?? []), ...va[i]]);
    if (kind === "normal" || kind === "residual") {
      if (va[i].every((v, j) => v === vc[i][j])) throw new Error(`${name}: seed ignored`);
    }
  });
  const std = (xs: number[]) => Math.sqrt(xs.reduce((s, x) => s + x * x, 0) / xs.length);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const normalValues = pooled.get("normal")!, residual = pooled.get("residual")!;
  if (Math.abs(std(normalValues) / 0.02 - 1) > 0.02) throw new Error(`std ${std(normalValues)}`);
  if (Math.abs(mean(normalValues)) > 0.001) throw new Error(`mean ${mean(normalValues)}`);
  if (Math.abs(std(residual) / residualStd - 1) > 0.02) {
    throw new Error(`residual std ${std(residual)}`);
  }
  if (!pooled.get("one")!.every((v) => v === 1) || !pooled.get("zero")!.every((v) => v === 0)) {
    throw new Error("LayerNorm parameters must start at 1 and 0");
  }
});

Deno.test("GPT-2: presets and configuration errors", () => {
  const sizes = (["gpt2-124m", "gpt2-350m", "gpt2-774m"] as const).map((p) => {
    const c = gptConfig(p);
    return `${c.nLayer},${c.nHead},${c.nEmbd},${c.vocabSize},${c.blockSize}`;
  });
  if (sizes.join(" ") !== "12,12,768,50257,1024 24,16,1024,50257,1024 36,20,1280,50257,1024") {
    throw new Error(`presets ${sizes}`);
  }
  const bad: [Partial<GPTConfig>, ErrorConstructor, RegExp][] = [
    [{ nEmbd: 17 }, RangeError, /nEmbd must be a multiple of nHead, got 17 and 2/],
    [{ nLayer: 0 }, RangeError, /nLayer must be a positive integer, got 0/],
    [{ dropout: 1 }, RangeError, /dropout must be in \[0, 1\), got 1/],
    [{ sparseSites: ["mlp.c_gate" as never] }, TypeError, /unknown sparse site "mlp.c_gate"/],
    [{ sparseSites: ["mlp.c_fc", "mlp.c_fc"] }, RangeError, /repeated/],
    [{ numClasses: -1 }, RangeError, /numClasses must be an integer >= 0/],
  ];
  for (const [override, type, pattern] of bad) {
    let ok = false;
    try {
      resolveGPTConfig(gptConfig("tiny", override));
    } catch (e) {
      ok = e instanceof type && pattern.test((e as Error).message);
      if (!ok) throw new Error(`${JSON.stringify(override)}: unexpected error ${e}`);
    }
    if (!ok) throw new Error(`${JSON.stringify(override)} was accepted`);
  }
  let ok = false;
  try {
    gptConfig("gpt5" as never);
  } catch (e) {
    ok = e instanceof TypeError && /unknown preset "gpt5"/.test(e.message);
  }
  if (!ok) throw new Error("an unknown preset was accepted");
});

Deno.test("GPT-2: batch errors name the offending sizes", async () => {
  const be = new ReferenceBackend();
  const model = await GPT.create(be, tinyConfig({ method: "dense" }), { seed: 1 });
  const cases: [Batch, ErrorConstructor, RegExp][] = [
    [makeBatch(1, 9, 32, 1), RangeError, /sequence length 9 exceeds the block size 8/],
    [{ ...BATCH, targets: new Int32Array(5) }, RangeError, /expected 12 targets .* got 5/],
    [
      { ...BATCH, batchSize: 5 },
      RangeError,
      /token count 12 must be a positive multiple of the batch size 5/,
    ],
    [{ ...BATCH, tokens: new Float32Array(12) as unknown as Int32Array }, TypeError, /Int32Arrays/],
  ];
  for (const [batch, type, pattern] of cases) {
    let ok = false;
    try {
      await model.evaluate(batch);
    } catch (e) {
      ok = e instanceof type && pattern.test((e as Error).message);
      if (!ok) throw new Error(`unexpected error ${e}`);
    }
    if (!ok) throw new Error(`accepted a bad batch (${pattern})`);
  }
});

Deno.test("GPT.hiddenStates: the final LayerNorm output, whose product with wteᵀ is the LM logits", async () => {
  const be = new ReferenceBackend();
  const model = await GPT.create(be, gptConfig("tiny", { sparse: { method: "s-ste" } }), {
    seed: 3,
  });
  const batch = makeBatch(2, 6, 32, 5);
  const { nEmbd: d, vocabSize: V } = model.config;
  for (const dense of [false, true]) {
    const hidden = await model.hiddenStates(batch.tokens, 2, { dense });
    if (hidden.length !== 12 * d) throw new Error(`hidden states of ${hidden.length} values`);
    const tape = new Tape(be, { recording: false });
    const logits = await be.read(
      model.forward(tape, be.indices(batch.tokens, [12]), 2, { dense }).value,
    );
    const [wte] = await be.readMany([model.wte.weight.value]);
    const product = new Float64Array(12 * V);
    for (let i = 0; i < 12; i++) {
      for (let v = 0; v < V; v++) {
        let sum = 0;
        for (let k = 0; k < d; k++) sum += hidden[i * d + k] * wte[v * d + k];
        product[i * V + v] = sum;
      }
    }
    assertClose(
      logits,
      product,
      { atol: 1e-6, rtol: 1e-5 },
      `logits = hidden·wteᵀ (dense ${dense})`,
    );
    be.release();
  }
});
