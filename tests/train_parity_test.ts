/**
 * Training-step parity: for every method of SPEC §2.8 and STEP (§2.10), three consecutive optimizer steps of a tiny
 * GPT-2 (2 blocks, width 16, vocabulary 32, dropout 0.1, batch 2×8) on WebGPU equal the same steps
 * on the reference backend from the same state — learning rate, loss, gradient norm, flip rates,
 * raw and applied gradients, updated weights. Before each later step the GPU's weights and AdamW
 * moments are set to the reference's; `t-sr-ste+df` crosses its dense switch, `step` its variance
 * freeze (step 2 dense, 3 and 4 with the sparse layers' `v` frozen at 3). Per-tensor
 * tolerances, the two-way weight check and the counted FP8 boundary flips are derived in SPEC §10.5
 * (WGSL rules: `gpu/float32_rules.ts`). The suite prints the adapter and fails without one.
 *
 * The WebGPU backend runs them once more with its fused attention kernels (SPEC §8.5) and no
 * dropout (the fused path excludes attention dropout; the reference then takes its fused oracle).
 *
 * The CPU backend (`core/cpu/`) runs the same steps under the same tolerances: its deviations from
 * the reference are a subset of the ones bounded there (float32 storage with float64 arithmetic
 * rounded once, as the reference; BLAS GEMMs whose any-order float32 sums obey the same `γ_K`
 * bounds as the GPU's; an `exp` within `5e-15` of `Math.exp`, far inside WGSL's; FP8 and 2:4
 * operations bit for bit the oracles'), on its default GEMM engine (oneDNN) and on OpenBLAS. It
 * fails without a BLAS library.
 *
 * @module
 */

import { assertClose } from "../reference/testing.ts";
import type { Backend, Fp8Format, Tensor } from "../core/backend.ts";
import { ReferenceBackend } from "../core/reference_backend.ts";
import { GPT, gptConfig } from "../core/gpt2.ts";
import { Trainer } from "../core/trainer.ts";
import {
  SPARSE_METHODS,
  type SparseMethod,
  sparseMethodTraits,
  type SparseOptions,
} from "../core/sparse.ts";
import { makeBatch, testRun } from "../core/train_testing.ts";
import { gpuFixture } from "../gpu/testing.ts";
import { createGpuBackend, GpuBackend } from "../gpu/backend.ts";
import { createCpuBackend } from "../core/cpu/backend.ts";
import { assertEqualOrFlushed, isSubnormalF32, U } from "../gpu/float32_rules.ts";

const STEPS = 3;
const ADAMW = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
const TOL = {
  loss: { atol: 0, rtol: 1e-6 },
  gradNorm: { atol: 0, rtol: 1e-5 },
  gradient: (scale: number) => ({ atol: 5e-5 * scale, rtol: 0 }),
  /** One AdamW step's float32 error on the GPU, `ρ` the update's size (module notes). */
  update: (scale: number, lr: number, rho: number) => ({
    atol: 2 * U * scale + 33 * U * lr * rho,
    rtol: 0,
  }),
  /** Direct weight comparison: the step's error plus the gradients' relative error on it. */
  weight: (scale: number, lr: number, rho: number) => ({
    atol: 2 * U * scale + 33 * U * lr * rho + 5e-5 * lr,
    rtol: 0,
  }),
};

/** The shared GPU backend; rejects (so every test fails) when WebGPU has no adapter. */
const gpu = gpuFixture("train_parity", () => createGpuBackend(), (be) => `"${be.device}"`);
let cpuPromise: Promise<Backend> | undefined;
/** The shared CPU backend; rejects (so every CPU test fails) when no BLAS library loads. */
function cpu(): Promise<Backend> {
  cpuPromise ??= createCpuBackend({ threads: 2 });
  return cpuPromise;
}
let openblasPromise: Promise<Backend> | undefined;
/** The CPU backend on its fallback GEMM engine, OpenBLAS (the default one is oneDNN). */
function cpuOpenblas(): Promise<Backend> {
  openblasPromise ??= createCpuBackend({ threads: 2, gemm: "openblas" });
  return openblasPromise;
}
let fusedPromise: Promise<Backend> | undefined;
/** The GPU backend on the shared runtime with the fused attention kernels (SPEC §8.5). */
function gpuFused(): Promise<Backend> {
  fusedPromise ??= gpu().then((be) => new GpuBackend(be.runtime, { attention: "fused" }));
  return fusedPromise;
}
/**
 * A GPU backend on the shared runtime that runs every product promised 2:4 from the compressed
 * operand (SPEC §8.6), new per test so its recorded choices are the test's.
 */
function gpuSparse(): Promise<GpuBackend> {
  return gpu().then((be) => new GpuBackend(be.runtime, { sparseKernels: "sparse" }));
}
const SPARSE_ENGINE = "WebGPU (2:4 kernels forced)";
/**
 * The fast backends checked against the reference, with the model's dropout: the fused attention
 * kernels run only without attention dropout, so their engine trains without it.
 */
const ENGINES: [string, () => Promise<Backend>, number][] = [
  ["WebGPU", gpu, 0.1],
  ["CPU", cpu, 0.1],
  ["CPU (OpenBLAS GEMMs)", cpuOpenblas, 0.1],
  ["WebGPU (fused attention, no dropout)", gpuFused, 0],
  [SPARSE_ENGINE, gpuSparse, 0.1],
];

/**
 * The products a method promises 2:4 in its sparse steps of the tiny model (`T` tokens): the
 * forward `X·W̃ᵀ` for a pruned weight, `∇Z·W̃` for a transposable one, `MVUE(∇Zᵀ)·X` with MVUE.
 */
function expectedSparseProducts(model: GPT, method: SparseMethod, tokens: number): string[] {
  const t = sparseMethodTraits(method);
  return model.sparseLayers().flatMap((layer) => {
    const [out, inF] = layer.weight.value.shape;
    return [
      ...(t.weight === "dense" ? [] : [`b ${tokens}x${inF}x${out} NT`]),
      ...(t.weight === "transposable" ? [`b ${tokens}x${out}x${inF} NN`] : []),
      ...(t.mvue ? [`a ${out}x${tokens}x${inF} NN`] : []),
    ];
  });
}

/** The method's options for the test: `t-sr-ste` refreshes its mask every step. */
function sparseOptions(method: SparseMethod): SparseOptions {
  if (method === "step") return { method, preconditionFraction: 0.5 };
  return method === "t-sr-ste" ? { method, maskRefresh: 1 } : { method };
}

/** A model and its trainer on one backend, at the method's first tested step. */
async function setUp(
  be: Backend,
  method: SparseMethod,
  dropout: number,
): Promise<{ model: GPT; trainer: Trainer }> {
  const config = gptConfig("tiny", { sparse: sparseOptions(method), dropout });
  const model = await GPT.create(be, config, { seed: 3 });
  const run = { totalSteps: 6, warmupSteps: 1, seed: 5, captureGradients: true, adamw: ADAMW };
  const trainer = new Trainer(model, testRun(run));
  if (method === "t-sr-ste+df") trainer.restore({ step: 3, phase: "sparse" });
  if (method === "step") trainer.restore({ step: 2, phase: "dense" });
  return { model, trainer };
}

/** Weights and AdamW moments by parameter name. */
type State = Map<string, { p: Float32Array; m: Float32Array; v: Float32Array }>;

async function readState(model: GPT, trainer: Trainer): Promise<State> {
  const be = model.backend, params = model.parameters();
  const tensors = params.flatMap((p) => {
    const { m, v } = trainer.optimizer.moments(p.name);
    return [p.value, m, v];
  });
  const values = await be.readMany(tensors);
  return new Map(params.map((p, i) => [p.name, {
    p: values[3 * i],
    m: values[3 * i + 1],
    v: values[3 * i + 2],
  }]));
}

function writeState(model: GPT, trainer: Trainer, state: State): void {
  const be = model.backend;
  for (const p of model.parameters()) {
    const s = state.get(p.name)!, { m, v } = trainer.optimizer.moments(p.name);
    be.assign(p.value, be.tensor(s.p, p.value.shape));
    be.assign(m, be.tensor(s.m, m.shape));
    be.assign(v, be.tensor(s.v, v.shape));
  }
}

/** The GPU's FP8 operands and results of one step, call by call (host copies). */
type Fp8Calls = { input: Float32Array; output: Float32Array; shape: number[]; format: Fp8Format }[];

/**
 * Wraps the GPU backend's `quantizeFp8` to keep a copy of every operand and result (`assign`
 * copies the bits — unlike `1·x`, which a device may flush where `x` is subnormal — and the
 * model's own tensors keep their lifetimes); `collect()` returns and forgets the calls so far.
 */
function captureFp8(be: Backend): { collect(): Promise<Fp8Calls>; restore(): void } {
  let kept: { input: Tensor; output: Tensor; format: Fp8Format }[] = [];
  const original = be.quantizeFp8.bind(be);
  const copy = (t: Tensor) => {
    const c = be.keep(be.full(t.shape));
    be.assign(c, t);
    return c;
  };
  be.quantizeFp8 = (x: Tensor, format: Fp8Format) => {
    const y = original(x, format);
    kept.push({ input: copy(x), output: copy(y), format });
    return y;
  };
  return {
    restore: () => delete (be as { quantizeFp8?: unknown }).quantizeFp8, // the prototype's again
    async collect() {
      const calls = kept;
      kept = [];
      const values = await be.readMany(calls.flatMap((c) => [c.input, c.output]));
      for (const c of calls) [c.input, c.output].forEach((t) => be.dispose(t));
      return calls.map((c, i) => ({
        input: values[2 * i],
        output: values[2 * i + 1],
        shape: [...c.input.shape],
        format: c.format,
      }));
    },
  };
}

/**
 * Whether two dequantised FP8 values hold different codes (float32 noise is far below 1e-3); a
 * `±0` against a subnormal is a flush, not a different code.
 */
function codesDiffer(a: number, b: number): boolean {
  if ((a === 0 && isSubnormalF32(b)) || (b === 0 && isSubnormalF32(a))) return false;
  return Math.abs(a - b) > 1e-3 * Math.max(Math.abs(a), Math.abs(b));
}

/**
 * Makes the reference's `quantizeFp8` align its discrete choices with the GPU's calls of the same
 * step (see the module notes); returns the running count of flips, and a function that restores
 * the reference's own method.
 */
function alignFp8(
  ref: ReferenceBackend,
  gpuCalls: Fp8Calls,
): { stats: { flips: number; values: number }; restore(): void } {
  const stats = { flips: 0, values: 0 };
  const original = ref.quantizeFp8.bind(ref);
  let call = 0;
  ref.quantizeFp8 = (x: Tensor, format: Fp8Format) => {
    const g = gpuCalls[call];
    if (!g || g.format !== format || g.shape.join() !== x.shape.join()) {
      throw new Error(`FP8 call ${call} differs between the backends (${format} [${x.shape}])`);
    }
    const y = original(x, format);
    const xr = ref.readF64(x), yr = Float32Array.from(ref.readF64(y));
    let scale = 0;
    for (const v of xr) scale = Math.max(scale, Math.abs(v));
    let flipped = 0;
    for (let k = 0; k < yr.length; k++) {
      if (!codesDiffer(yr[k], g.output[k])) continue;
      if (Math.abs(xr[k] - g.input[k]) > 1e-4 * scale) {
        throw new Error(
          `FP8 call ${call}, position ${k}: operands ${xr[k]} (reference) and ${
            g.input[k]
          } (GPU) differ beyond float32 noise`,
        );
      }
      yr[k] = g.output[k];
      flipped++;
    }
    stats.flips += flipped;
    stats.values += yr.length;
    call++;
    return flipped === 0 ? y : ref.tensor(yr, x.shape);
  };
  return {
    stats,
    restore: () => {
      delete (ref as { quantizeFp8?: unknown }).quantizeFp8;
      if (call !== gpuCalls.length) {
        throw new Error(`the reference made ${call} FP8 calls, the GPU ${gpuCalls.length}`);
      }
    },
  };
}

/**
 * The exact (float64) AdamW update of `state` with `grad`, as the trainer configures it (with the
 * variance frozen at `t.frozenAt` when given, SPEC 2.10), and the update's size `ρ` of the module
 * notes.
 */
function exactAdamW(
  s: { p: Float32Array; m: Float32Array; v: Float32Array },
  grad: Float32Array,
  lr: number,
  t: { step: number; frozenAt: number | undefined },
  weightDecay: boolean,
): { weights: Float64Array; rho: number } {
  const { beta1, beta2, eps } = ADAMW, wd = weightDecay ? ADAMW.weightDecay : 0;
  const c1 = 1 - beta1 ** t.step, c2 = 1 - beta2 ** (t.frozenAt ?? t.step);
  const weights = new Float64Array(s.p.length);
  let rho = 0;
  for (let i = 0; i < weights.length; i++) {
    const m = beta1 * s.m[i] + (1 - beta1) * grad[i];
    const v = t.frozenAt !== undefined ? s.v[i] : beta2 * s.v[i] + (1 - beta2) * grad[i] * grad[i];
    const denominator = Math.sqrt(v / c2) + eps;
    const mAbs = beta1 * Math.abs(s.m[i]) + (1 - beta1) * Math.abs(grad[i]);
    rho = Math.max(rho, mAbs / c1 / denominator);
    weights[i] = s.p[i] - lr * ((m / c1) / denominator + wd * s.p[i]);
  }
  return { weights, rho };
}

function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

function compareMaps(
  gpuMap: Map<string, Float32Array>,
  refMap: Map<string, Float32Array>,
  tolOf: (scale: number) => { atol: number; rtol: number },
  label: string,
): void {
  const names = [...refMap.keys()];
  if (gpuMap.size !== refMap.size || names.some((n) => !gpuMap.has(n))) {
    throw new Error(`${label}: different tensors, [${[...gpuMap.keys()]}] vs [${names}]`);
  }
  for (const name of names) {
    const r = refMap.get(name)!;
    assertClose(gpuMap.get(name)!, r, tolOf(maxAbs(r)), `${label} ${name}`);
  }
}

Deno.test("a WebGPU adapter is present (this suite fails without one)", async () => {
  await gpu(); // prints the adapter
});

for (const [engine, fast, dropout] of ENGINES) {
  for (const method of SPARSE_METHODS) {
    Deno.test(`a training step on ${engine} equals the reference step: ${method}`, async () => {
      const gpuBe = await fast();
      const ref = new ReferenceBackend();
      const G = await setUp(gpuBe, method, dropout), R = await setUp(ref, method, dropout);
      if (gpuBe === await gpuFused()) { // the fused kernels must be what this engine runs
        const { nHead, nEmbd } = G.model.config;
        const dims = { bh: 2 * nHead, T: 8, hd: nEmbd / nHead };
        if ((gpuBe as GpuBackend).attentionPath(dims) !== "fused") {
          throw new Error(`${engine}: the backend does not take the fused path`);
        }
      }
      const fp8 = method === "s-ste+fp8";
      const capture = fp8 ? captureFp8(gpuBe) : undefined;
      const fp8Totals = { operands: 0, values: 0, flips: 0, flushed: 0 };
      let illConditioned = 0;
      const flipSteps: number[] = [];
      try {
        for (let s = 0; s < STEPS; s++) {
          const before = await readState(R.model, R.trainer);
          if (s === 0) {
            const gpuState = await readState(G.model, G.trainer); // same seed: same initial bits
            for (const [name, st] of before) {
              assertClose(gpuState.get(name)!.p, st.p, { atol: 0, rtol: 0 }, `initial ${name}`);
            }
          } else {
            writeState(G.model, G.trainer, before);
          }
          const batch = makeBatch(2, 8, 32, s + 1);
          const gs = await G.trainer.trainStep(batch);
          let rs;
          if (capture) {
            const calls = await capture.collect();
            for (const [i, c] of calls.entries()) {
              const own = await ref.read(ref.quantizeFp8(ref.tensor(c.input, c.shape), c.format));
              // A device that flushes a subnormal operand quantises it to ±0 (the scale comes from
              // the integer bits, so the other entries keep theirs).
              const flushed = own.map((v, k) => (isSubnormalF32(c.input[k]) ? 0 : v));
              fp8Totals.flushed += assertEqualOrFlushed(
                c.output,
                own,
                `FP8 call ${i} (${c.format}) on GPU`,
                flushed,
              );
            }
            ref.release();
            const aligner = alignFp8(ref, calls);
            try {
              rs = await R.trainer.trainStep(batch);
            } finally {
              aligner.restore();
            }
            fp8Totals.operands += calls.length;
            fp8Totals.values += aligner.stats.values;
            fp8Totals.flips += aligner.stats.flips;
          } else {
            rs = await R.trainer.trainStep(batch);
          }
          const label = `${method} step ${rs.step}`;
          assertClose(
            [gs.step, gs.lr],
            [rs.step, rs.lr],
            { atol: 0, rtol: 0 },
            `${label} step, lr`,
          );
          assertClose([gs.loss], [rs.loss], TOL.loss, `${label} loss`);
          assertClose([gs.gradNorm], [rs.gradNorm], TOL.gradNorm, `${label} gradient norm`);
          if (JSON.stringify(gs.flipRateByLayer) !== JSON.stringify(rs.flipRateByLayer)) {
            throw new Error(
              `${label}: flip rates differ, ${JSON.stringify(gs.flipRateByLayer)} vs ${
                JSON.stringify(rs.flipRateByLayer)
              }`,
            );
          }
          if (rs.flipRate !== null && s > 0) flipSteps.push(rs.step);
          compareMaps(
            G.trainer.lastGradients!,
            R.trainer.lastGradients!,
            TOL.gradient,
            `${label} gradient`,
          );
          const appliedG = G.trainer.lastAppliedGradients!,
            appliedR = R.trainer.lastAppliedGradients!;
          compareMaps(appliedG, appliedR, TOL.gradient, `${label} applied gradient`);

          const [afterG, afterR] = [
            await readState(G.model, G.trainer),
            await readState(R.model, R.trainer),
          ];
          for (const p of R.model.parameters()) {
            const pre = before.get(p.name)!, wg = afterG.get(p.name)!.p, wr = afterR.get(p.name)!.p;
            const frozenAt = R.trainer.optimizer.varianceFrozenAt(p.name);
            if (G.trainer.optimizer.varianceFrozenAt(p.name) !== frozenAt) {
              throw new Error(`${label}: ${p.name}'s variance freeze differs between the backends`);
            }
            const t = { step: rs.step + 1, frozenAt };
            const g = exactAdamW(pre, appliedG.get(p.name)!, rs.lr, t, p.weightDecay);
            const r = exactAdamW(pre, appliedR.get(p.name)!, rs.lr, t, p.weightDecay);
            const exactG = g.weights, exactR = r.weights, rho = Math.max(g.rho, r.rho);
            const scale = maxAbs(wr);
            const update = TOL.update(scale, rs.lr, rho);
            assertClose(wg, exactG, update, `${label} weight ${p.name} (GPU vs exact AdamW)`);
            assertClose(wr, exactR, update, `${label} weight ${p.name} (reference vs exact AdamW)`);
            const direct = TOL.weight(scale, rs.lr, rho);
            const compared: number[] = [];
            for (let i = 0; i < wr.length; i++) {
              if (Math.abs(exactG[i] - exactR[i]) <= direct.atol) compared.push(i);
            }
            illConditioned += wr.length - compared.length;
            assertClose(
              compared.map((i) => wg[i]),
              compared.map((i) => wr[i]),
              direct,
              `${label} weight ${p.name}`,
            );
          }
        }
      } finally {
        capture?.restore();
      }
      const notes = [
        `${illConditioned} weight entries moved apart only through AdamW's ` +
        `normalisation of float-noise gradients (excluded from the direct comparison)`,
      ];
      if (fp8) {
        if (fp8Totals.operands === 0) throw new Error("no FP8 operand was captured");
        notes.push(
          `FP8: ${fp8Totals.operands} operands, ${fp8Totals.values} values, ${fp8Totals.flips} ` +
            `codes flipped at rounding boundaries and aligned, ${fp8Totals.flushed} subnormals ` +
            `flushed on the GPU`,
        );
      }
      console.log(`${method}: ${notes.join("; ")}`);
      if (method === "t-sr-ste" && flipSteps.length === 0) {
        throw new Error("t-sr-ste counted no mask flips after its first step");
      }
      if (method === "t-sr-ste+df" && G.trainer.phase !== "dense") {
        throw new Error("t-sr-ste+df did not reach its dense phase");
      }
      if (engine === SPARSE_ENGINE) { // the compressed path must be what this engine ran
        const ran = (gpuBe as GpuBackend).sparseKernels.choices();
        const missing = expectedSparseProducts(G.model, method, 16).filter((k) =>
          ran[k]?.path !== "sparse"
        );
        if (missing.length > 0) {
          throw new Error(`${engine}: ${missing.join(", ")} did not run sparse`);
        }
      }
      if (method === "step") {
        const layers = R.model.sparseLayers();
        const frozen = layers.map((l) => G.trainer.optimizer.varianceFrozenAt(l.name));
        if (G.trainer.phase !== "sparse" || frozen.some((at) => at !== 3)) {
          throw new Error(`step did not freeze its variance at 3 (${frozen})`);
        }
      }
      gpuBe.release();
    });
  }
}

/** A tiny GPT-2 and its trainer for the trainer-mode comparisons below (seed 3, run seed 5). */
async function tinyTrainer(
  be: Backend,
  sparse: SparseOptions,
  run: { gradClip: number; captureGradients?: boolean },
): Promise<Trainer> {
  const model = await GPT.create(be, gptConfig("tiny", { sparse }), { seed: 3 });
  return new Trainer(model, {
    totalSteps: 6,
    peakLr: 1e-2,
    warmupSteps: 1,
    minLr: 1e-3,
    seed: 5,
    adamw: ADAMW,
    ...run,
  });
}

Deno.test("clipping inside AdamW on WebGPU updates exactly as a separate scale pass", async () => {
  // captureGradients keeps the separate scale pass; without it AdamW applies the clip factor to
  // each gradient as it reads it (the same float32 product, `s·g`).
  const be = await gpu();
  for (const method of ["dense", "s-ste", "t-sr-ste"] as const) {
    const trainers = await Promise.all(
      [false, true].map((captureGradients) =>
        tinyTrainer(be, { method }, { gradClip: 0.01, captureGradients }) // active clipping
      ),
    );
    const batch = makeBatch(2, 8, 32, 1);
    for (let s = 0; s < 2; s++) for (const t of trainers) await t.trainStep(batch);
    const [a, b] = await Promise.all(
      trainers.map((t) => be.readMany(t.model.parameters().map((p) => p.value))),
    );
    a.forEach((w, i) => assertClose(w, b[i], { atol: 0, rtol: 0 }, `${method}: parameter ${i}`));
    for (const t of trainers) for (const p of t.model.parameters()) be.dispose(p.value);
  }
});

Deno.test("lagged steps (enqueueStep, read one step later) equal sync steps bit for bit", async () => {
  for (
    const [name, be] of [["WebGPU", await gpu()], ["reference", new ReferenceBackend()]] as const
  ) {
    for (const method of ["dense", "s-ste", "t-sr-ste", "sr-ste"] as const) {
      const options = method === "t-sr-ste" ? { method, maskRefresh: 1 } : { method };
      // gradClip 0.05: active clipping on some steps.
      const trainers = await Promise.all(
        [0, 1].map(() => tinyTrainer(be, options, { gradClip: 0.05 })),
      );
      const [sync, lagged] = trainers, batches = [1, 2, 3, 4].map((s) => makeBatch(2, 8, 32, s));
      const expected = [];
      for (const batch of batches) expected.push(await sync.trainStep(batch));
      const got = [], pending = [];
      for (const batch of batches) {
        pending.push((await lagged.enqueueStep(batch)).result);
        if (pending.length > 1) got.push(await pending.shift()!);
      }
      got.push(await pending.shift()!);
      const label = `${name}, ${method}`;
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        throw new Error(
          `${label}: step reports differ:\n${JSON.stringify(got)}\n${JSON.stringify(expected)}`,
        );
      }
      const state = (t: Trainer) =>
        be.readMany(
          t.model.parameters().flatMap((p) => {
            const { m, v } = t.optimizer.moments(p.name);
            return [p.value, m, v];
          }),
        );
      const [a, b] = [await state(sync), await state(lagged)];
      a.forEach((w, i) => assertClose(b[i], w, { atol: 0, rtol: 0 }, `${label}: state ${i}`));
      for (const t of trainers) for (const p of t.model.parameters()) be.dispose(p.value);
    }
  }
});
