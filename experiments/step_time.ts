/**
 * Step time of GPT-2 training per 2:4 method, on the reference (pure TypeScript) backend and on
 * the WebGPU backend, in the same run. The figure is the ratio reference ÷ WebGPU for each method;
 * absolute times depend on the machine (and the WebGPU adapter, which this script prints).
 *
 * One "step" is `Trainer.trainStep`: sparse-layer step set-up, forward, backward, clipping (on the
 * backend), masked decay, AdamW, the step's one bulk read (loss, gradient norm, flip counts) and
 * `release()`; on WebGPU also with the read lagged one step (`Trainer.enqueueStep`), and the
 * dispatches and read-backs of one step.
 * The first `warmup` steps (pipeline compilation, buffer pool fill) are not timed; the median of
 * the `steps` timed steps is reported.
 *
 * What to expect: at the `tiny` size (width 16) both backends are dominated by per-operation
 * overhead, and WebGPU can be slower than plain TypeScript (each op is a dispatch, plus one
 * submit and read-back per step); from `mini` (width 128, vocabulary 2048) on, matmuls dominate
 * and the GPU wins, by more on a discrete GPU than on a software adapter.
 *
 * The Markdown table (`--out`) is rewritten after every measurement, so a run cut short still
 * leaves the rows it finished. `--skipReferenceAfter=N` times the reference for the first N
 * methods only (the GPU for all), so GPU-sized models keep a reference ÷ WebGPU ratio without
 * waiting on the slow reference for every method.
 *
 * Usage:
 *   deno run --allow-read --allow-write --allow-env experiments/step_time.ts
 *   deno run --allow-read --allow-write --allow-env experiments/step_time.ts --model=mini \
 *     --batch=4 --seq=64 --methods=dense,s-ste --out=results/step_time.md
 *   deno run --allow-read --allow-write --allow-env experiments/step_time.ts --model=mini \
 *     --batch=8 --seq=128 --skipReferenceAfter=1 --out=results/step_time.md
 *
 * @module
 */

import { median, ratio } from "./_bench.ts";
import type { Backend } from "../core/backend.ts";
import { ReferenceBackend } from "../core/reference_backend.ts";
import { GPT, gptConfig, type GPTPreset } from "../core/gpt2.ts";
import { Trainer } from "../core/trainer.ts";
import { SPARSE_METHODS, type SparseMethod } from "../core/sparse.ts";
import { createGpuBackend, GpuBackend } from "../gpu/backend.ts";
import { assertInt, assertOneOf, parseConfig, parseList, runCli } from "./_config.ts";

// ---- configuration ------------------------------------------------------------------------------
const DEFAULTS = {
  /** Model size: `tiny` (width 16) or `mini` (width 128); the GPT-2 sizes need a real GPU. */
  model: "tiny",
  /** Sequences per batch. */
  batch: 4,
  /** Sequence length (at most the model's block size). */
  seq: 8,
  /** Untimed steps first (compilation, pool warm-up). */
  warmup: 2,
  /** Timed steps (the median is reported). */
  steps: 5,
  /** Comma-separated methods (default: all of SPEC §2.8). */
  methods: SPARSE_METHODS.join(","),
  /** Skip the reference backend for every method (for sizes where it is too slow). */
  skipReference: false,
  /** Time the reference for the first N methods only (negative: for all of them). */
  skipReferenceAfter: -1,
  /** Also write the Markdown table here (empty: print only). */
  out: "",
};
type Config = typeof DEFAULTS;

/** The model sizes `--model` accepts. */
const MODELS: readonly GPTPreset[] = ["tiny", "mini", "gpt2-124m", "gpt2-350m", "gpt2-774m"];

function batchOf(config: Config, vocab: number, step: number) {
  const n = config.batch * config.seq;
  const tokens = new Int32Array(n), targets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    tokens[i] = (i * 7 + 13 * step + 1) % vocab;
    targets[i] = (i * 5 + 11 * step + 2) % vocab;
  }
  return { tokens, targets, batchSize: config.batch };
}

/** What one timed step of a method costs: median milliseconds, and on WebGPU its counts. */
interface StepCost {
  /** Median milliseconds per step. */
  ms: number;
  /** Dispatches and blocking read-backs of the last timed step (WebGPU only). */
  counts?: { dispatches: number; readBacks: number };
}

/**
 * Milliseconds per training step of `method` on `be` (and its WebGPU counts): the median of
 * `trainStep`s, or with `lagged` the mean over the timed steps of `enqueueStep`s whose reports are
 * awaited one step late (no blocking read inside a step).
 */
async function timeSteps(
  be: Backend,
  method: SparseMethod,
  config: Config,
  lagged = false,
): Promise<StepCost> {
  const model = await GPT.create(
    be,
    gptConfig(config.model as GPTPreset, { sparse: { method } }),
    { seed: 1 },
  );
  const total = config.warmup + config.steps;
  const trainer = new Trainer(model, {
    totalSteps: Math.max(total, 6),
    peakLr: 1e-3,
    warmupSteps: 1,
    minLr: 1e-4,
    seed: 1,
  });
  const vocab = model.config.vocabSize;
  const times: number[] = [], rt = be instanceof GpuBackend ? be.runtime : undefined;
  let counts: StepCost["counts"];
  let pending: Promise<unknown> | undefined, start = 0;
  for (let s = 0; s < total; s++) {
    const batch = batchOf(config, vocab, s);
    const d0 = rt?.dispatchCount ?? 0, r0 = rt?.readBackCount ?? 0;
    if (s === config.warmup) start = performance.now();
    const t0 = performance.now();
    if (lagged) {
      const { result } = await trainer.enqueueStep(batch);
      await pending; // the previous step's report, one step late
      pending = result;
    } else await trainer.trainStep(batch);
    if (s >= config.warmup) times.push(performance.now() - t0);
    if (rt) counts = { dispatches: rt.dispatchCount - d0, readBacks: rt.readBackCount - r0 };
  }
  await pending;
  const ms = lagged ? (performance.now() - start) / config.steps : median(times);
  for (const p of model.parameters()) be.dispose(p.value);
  return { ms, counts };
}

async function main(args: string[]): Promise<void> {
  const config = parseConfig(DEFAULTS, args);
  assertOneOf("model", config.model, MODELS);
  for (const key of ["batch", "seq", "steps"] as const) assertInt(key, config[key], 1);
  assertInt("warmup", config.warmup, 0);
  assertInt("skipReferenceAfter", config.skipReferenceAfter, -1);
  const methods = parseList(
    "methods",
    config.methods,
    (m) => assertOneOf("methods", m, SPARSE_METHODS),
  );
  const refCount = config.skipReference
    ? 0
    : config.skipReferenceAfter < 0
    ? methods.length
    : config.skipReferenceAfter;
  const started = new Date();
  const gpu: GpuBackend = await createGpuBackend();
  const ref = new ReferenceBackend();
  console.log(`WebGPU adapter: ${gpu.device}`);
  console.log(
    `model ${config.model}, batch ${config.batch}×${config.seq}, ${config.warmup} warm-up + ` +
      `${config.steps} timed steps (median)` +
      (refCount < methods.length ? `; reference timed for the first ${refCount} method(s)` : "") +
      "\n",
  );
  /** One table row; `refMs` is undefined while pending, null when not timed. */
  const rows: {
    method: SparseMethod;
    gpu: StepCost;
    lagged: StepCost;
    refMs?: number | null;
  }[] = [];
  const line = (r: (typeof rows)[number]) => {
    const ref = r.refMs === undefined ? "…" : r.refMs === null ? "—" : r.refMs.toFixed(1);
    const speedup = typeof r.refMs === "number" ? ratio(r.refMs, r.gpu.ms) : "—";
    const c = r.gpu.counts;
    return `| ${r.method} | ${ref} | ${r.gpu.ms.toFixed(1)} | ${speedup} | ${
      r.lagged.ms.toFixed(1)
    } | ${c?.dispatches} | ${c?.readBacks} |`;
  };
  const head = [
    "| method | reference ms/step | WebGPU ms/step | reference ÷ WebGPU | WebGPU, read lagged one step | dispatches/step | read-backs/step |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  const write = async (finished: boolean) => {
    if (!config.out) return;
    const header = `Step time per method (${config.model}, batch ${config.batch}×${config.seq}); ` +
      `WebGPU adapter: ${gpu.device}${
        finished ? "" : " (incomplete: run in progress or cut short)"
      }\n\n` +
      `Measured ${started.toISOString().slice(0, 16).replace("T", " ")} UTC on ` +
      `${navigator.hardwareConcurrency} CPU threads (${Deno.build.os}/${Deno.build.arch}) by ` +
      `\`deno run -A experiments/step_time.ts ${Deno.args.join(" ")}\`: ${config.warmup} ` +
      `untimed + ${config.steps} timed steps per method and backend, median (the lagged column: ` +
      `\`Trainer.enqueueStep\`, each report awaited after the next step is recorded; mean); both ` +
      `backends in the same process, one after the other. Dispatches and read-backs: one ` +
      `WebGPU step.\n\n`;
    const note = refCount < methods.length
      ? `\nThe reference was timed for the first ${refCount} method(s) only (—: not timed).\n`
      : "";
    await Deno.writeTextFile(
      config.out,
      header + [...head, ...rows.map(line)].join("\n") + "\n" + note,
    );
  };
  console.log(head.join("\n"));
  await write(false);
  for (const [index, method] of methods.entries()) {
    const row: (typeof rows)[number] = {
      method,
      gpu: await timeSteps(gpu, method, config),
      lagged: await timeSteps(gpu, method, config, true),
    };
    rows.push(row);
    if (index < refCount) {
      await write(false); // the GPU figure survives a cut while the reference runs
      row.refMs = (await timeSteps(ref, method, config)).ms;
    } else row.refMs = null;
    console.log(line(row));
    await write(false);
  }
  await write(true);
  if (config.out) console.log(`\nwrote ${config.out}`);
  gpu.destroy();
}

if (import.meta.main) await runCli(main);
