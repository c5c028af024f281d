/**
 * GPT-2 pre-training with every 2:4 method, then two downstream tasks — the scaled-down
 * reproduction of P1's GPT-2 tables and P2's Table 6 (SPEC §6, protocol §11.4).
 *
 * What it does: trains the same GPT-2 (same initial weights, same data order, same schedule) with
 * each method of SPEC 2.8 on the Brown corpus (GPT-2 BPE), `--seeds` times each (initialisation,
 * data order and MVUE draws change with the seed); reports validation loss on held-out documents,
 * the token accuracy of a part-of-speech probe on the frozen model (thousands of labels), and the
 * accuracy of genre fine-tuning (the GLUE stand-in, fine-tuned as P1/P2 do: S-STE with β·S(W) and
 * a plain backward, every other method dense). Each method is compared with dense by the paired
 * difference over seeds and its 95% interval, and each claim of the papers gets a verdict from
 * that interval (`_stats.ts`).
 *
 * What to expect (SPEC §5): dense ≲ T-SR-STE+DF ≈ S-STE < SR-STE < STE in loss; at this tiny scale
 * and step count many gaps are inside the intervals, and the verdicts say which.
 *
 * Usage:
 *   deno task gpt2                                   # CPU-sized default preset, all methods
 *   deno task gpt2 --preset=cpu-powered              # more steps and seeds (about an hour)
 *   deno task gpt2 --preset=gpu --backend=webgpu     # a larger model on a real GPU
 *   deno task gpt2 --methods=dense,s-ste --seeds=5 --resume
 *   deno task gpt2 --methods=ste --seed=4 --seeds=1 --out=/tmp/a   # part of a larger table …
 *   deno task gpt2 --merge=/tmp/a,/tmp/b --out=results/x           # … combined with others
 *   experiments/gpt2_gpu.sh OUT 330                                # the `gpu` preset's H100 run
 *
 * Outputs (in `--out`, default `results/gpt2`): `summary.json`, `table.md`, `loss.svg`,
 * `val_loss.svg`, `flip_rate.svg`, one `runs/<method>_s<seed>.json` per finished run (what
 * `--merge` combines: runs trained in separate processes, e.g. side by side on one GPU), and
 * per-run checkpoints under `checkpoints/` (or `--checkpoints`; for `--resume`).
 *
 * Over 600 lines: one single-file experiment (presets, the run loop, the table, the verdicts, the
 * split-run merge), as the project's experiments are meant to be read top to bottom.
 *
 * @module
 */

import {
  SPARSE_METHODS,
  type SparseMethod,
  sparseMethodTraits,
  type SparseOptions,
} from "../core/sparse.ts";
import type { GPTConfig } from "../core/gpt2.ts";
import type { GpuBackend } from "../gpu/backend.ts";
import { cachedBrownPosTags } from "../core/data/mod.ts";
import { lineChart } from "./_plot.ts";
import { assertInt, assertOneOf, parseConfig, parseList, runCli } from "./_config.ts";
import {
  checkLmConfig,
  DATA_DIR,
  formatSeconds,
  type LmData,
  modelConfig,
  type RunLog,
  summaryHeader,
} from "./lm.ts";
import { checkFinetuneConfig, finetuneGenre } from "./_lm_finetune.ts";
import { LmExperiment, producedBy, type RunTotals, runTotals } from "./_lm_experiment.ts";
import { writeSummary } from "./_summary.ts";
import { GPT2_CPU, GPT2_GPU, LM_TINY } from "./_lm_presets.ts";
import { posProbe, posWindows } from "./_pos_probe.ts";
import {
  type Claim,
  mean,
  type MeanInterval,
  meanInterval,
  pairedDifferences,
  type SeededValue,
  verdict,
} from "./_stats.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "cpu", // cpu | cpu-powered | cpu-tiny | gpu | gpu-124m
  // SPEC 2.8's seven methods (the committed table); STEP (SPEC 2.10) with --methods=…,step.
  methods: SPARSE_METHODS.filter((m) => !sparseMethodTraits(m).precondition).join(","),
  steps: 120, // optimizer steps of pre-training
  seed: 1, // first seed (initialisation, data order and MVUE draws)
  seeds: 3, // every method is trained with seeds seed, seed+1, … (≥ 3 for the intervals)
  backend: "auto", // auto | cpu | reference | webgpu
  out: "results/gpt2",
  resume: false, // continue every run from its checkpoint (a bare --resume means true)
  checkpointEvery: 100, // steps between checkpoints (and one at the end of each run)
  checkpoints: "", // checkpoint folder ("" = <out>/checkpoints)
  merge: "", // output folders of earlier runs (comma-separated): combine their runs, train none
  data: DATA_DIR,
  ...GPT2_CPU, // 2 layers × 128, context 64, 4,096 ids, batch 16, peak LR 1e-3 (_lm_presets.ts)
  warmup: 12, // linear warm-up steps
  minLr: 1e-4, // cosine floor
  evalEvery: 0, // steps between validations (0 = only at the end)
  evalBatches: 64, // validation batches (fixed, the same for every run)
  alpha: 1e-3, // T-SR-STE masked decay: the α alpha_select.ts selects at this size (SPEC 2.3)
  alphaFrom: "", // an alpha_select.ts summary.json whose selected_alpha replaces --alpha
  maskRefresh: 0, // T-SR-STE refresh period; 0 = P1's ratio (40 of 300k steps) scaled to the run
  pos: true, // part-of-speech probe on the frozen model
  posPerDoc: 2, // probe training windows per training document
  posValPerDoc: 8, // probe validation windows per validation document
  probeEpochs: 4,
  genre: true, // genre fine-tuning
  finetuneSteps: 40,
  finetuneBatch: 16,
  finetuneLr: 1e-3,
  passageTokens: 64,
  maxPerDoc: 8,
  labels: "group", // genre | group (4-way) | binary
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  // Sized for the 20-minute budget of the README's first command on 2 CPU cores with the CPU
  // backend (21 runs: 7 methods × 3 seeds, each pre-trained, validated on 64 batches and probed
  // for part-of-speech tags): 2 layers × 128 wide, context 64, batch 16 (1,024 tokens a step),
  // ~0.4M non-embedding parameters. The vocabulary is the point: with all 50,257 GPT-2 ids the
  // output layer costs 6·V·d ≈ 38.6M FLOPs per token, 16× the two blocks (6·12·d²·L ≈ 2.4M); the
  // 4,096 most frequent training ids (the rest map to <unk>, 16% of training tokens) bring it to
  // 3.1M. Genre fine-tuning is off here: its 52 validation documents cannot power a comparison,
  // and its 40 steps would cost a third of each run. Measured on the shared 2-core machine: 57 min
  // for the 21 runs at load 5–30, 42 s for the fastest run; ~11–15 min extrapolated for 2 idle
  // cores (README).
  cpu: { genre: false, posPerDoc: 1, posValPerDoc: 4 },
  // The powered CPU run: 5 seeds, 300 steps, genre fine-tuning on, more probe windows (about 35
  // runs of 2–3 minutes each on 2 idle cores).
  "cpu-powered": { seeds: 5, steps: 300, warmup: 30, posPerDoc: 2, posValPerDoc: 8 },
  // The test suite's smoke run.
  "cpu-tiny": {
    ...LM_TINY,
    steps: 12,
    warmup: 2,
    evalEvery: 6,
    evalBatches: 2,
    maskRefresh: 4,
    finetuneSteps: 4,
    finetuneBatch: 4,
    passageTokens: 16,
    maxPerDoc: 1,
    seeds: 2,
    posPerDoc: 1,
    posValPerDoc: 1,
    probeEpochs: 1,
  },
  // Sized to Brown for the H100 (README "GPT-2 on the H100"): 240 steps of 16×256 tokens are
  // 0.98M tokens, 0.84 epoch of the 1.16M training tokens (the earlier 600 steps of this batch made
  // two epochs and overfit: validation 6.12 vs training 5.79). 4 layers × 384 wide, 6 heads of 64,
  // context 256: 7.1M non-embedding parameters, 18× the cpu preset's. The 16,384 most frequent ids
  // (3.1% of training tokens → <unk>; Brown uses 32,371 of the 50,257) cut the output layer to a
  // third of the full vocabulary's. 21 runs (7 methods × 3 seeds) and the α selection at this size
  // (alpha_select.ts --preset=gpu, whose summary --alphaFrom reads) fit one 10-minute command as
  // concurrent processes (experiments/gpt2_gpu.sh). Genre fine-tuning is off: its 52 validation
  // documents cannot power a comparison.
  gpu: {
    alphaFrom: "results/gpt2_gpu/alpha_selection/summary.json", // selected on the H100 (6e-5)
    ...GPT2_GPU, // 4 layers × 384, context 256, 16,384 ids, batch 16, peak LR 1e-3
    steps: 240,
    warmup: 24,
    minLr: 1e-4,
    evalEvery: 120,
    evalBatches: 64,
    genre: false,
    posPerDoc: 1,
    posValPerDoc: 4,
  },
  // GPT-2 124M shapes (SPEC §4), seq 1024.
  "gpu-124m": {
    alpha: 6e-5, // P1's GPT-2 124M value (SPEC 2.3)
    vocab: 0,
    nLayer: 12,
    nHead: 12,
    nEmbd: 768,
    blockSize: 1024,
    batchSize: 8,
    steps: 300,
    lr: 6e-4,
    warmup: 30,
    minLr: 6e-5,
    evalEvery: 100,
    evalBatches: 64,
    finetuneSteps: 100,
    finetuneBatch: 16,
    finetuneLr: 3e-4,
    passageTokens: 256,
  },
};

interface MethodResult extends RunTotals {
  method: SparseMethod;
  seed: number;
  val_loss: number;
  val_ppl: number;
  /** Genre accuracy after fine-tuning (null with `--genre=false`). */
  finetune_acc: number | null;
  finetune_majority: number | null;
  /** Whether the fine-tuned model was evaluated dense (else with β·S(W)); null without genre. */
  finetune_evaluated_dense: boolean | null;
  /** Mean training loss over the last 5% of the steps (at least one): the overfitting check. */
  train_loss_final: number;
  /** Part-of-speech probe token accuracy (null with `--pos=false`). */
  pos_acc: number | null;
  pos_majority: number | null;
  /** Whether the pre-trained model was evaluated (val loss, probe features) with dense weights. */
  evaluated_dense: boolean;
  flip_rate_final: number | null;
  steps: number;
}

/**
 * T-SR-STE's refresh period: `--maskRefresh`, or with 0 P1's ratio (a refresh every 40 of 300k
 * steps) scaled to the run, which is every step for any run under 11,250 steps.
 */
function maskRefreshOf(cfg: Config): number {
  return cfg.maskRefresh > 0
    ? cfg.maskRefresh
    : Math.max(1, Math.round(cfg.steps * P1_REFRESH / P1_STEPS));
}
const P1_REFRESH = 40;
const P1_STEPS = 300_000;

/** A method's sparse options: T-SR-STE's α and refresh period come from the config block. */
function sparseOptions(cfg: Config, method: SparseMethod): SparseOptions {
  return {
    method,
    ...(isTransposable(method) ? { alpha: cfg.alpha, maskRefresh: maskRefreshOf(cfg) } : {}),
  };
}

/**
 * Validates every flag before any work (training, data preparation or output).
 *
 * @returns The configuration, the methods to train and the fine-tuning label set.
 * @throws {TypeError|RangeError} On the first invalid flag.
 */
async function configure(args: string[]) {
  const cfg = parseConfig(defaults, args, presets);
  if (cfg.alphaFrom !== "") cfg.alpha = await selectedAlpha(cfg.alphaFrom);
  const methods = parseList(
    "methods",
    cfg.methods,
    (m) => assertOneOf("methods", m, SPARSE_METHODS),
  );
  assertInt("seeds", cfg.seeds, 1, 20);
  assertInt("evalEvery", cfg.evalEvery, 0);
  assertInt("maskRefresh", cfg.maskRefresh, 0);
  assertInt("posPerDoc", cfg.posPerDoc, 1);
  assertInt("posValPerDoc", cfg.posValPerDoc, 1);
  assertInt("probeEpochs", cfg.probeEpochs, 1);
  checkLmConfig(cfg, methods.map((m) => sparseOptions(cfg, m)));
  const labels = checkFinetuneConfig(cfg);
  return { cfg, methods, labels };
}

/** The α an `alpha_select.ts` summary selected (`--alphaFrom`). */
async function selectedAlpha(path: string): Promise<number> {
  let selected: unknown;
  try {
    selected = JSON.parse(await Deno.readTextFile(path)).selected_alpha;
  } catch (e) {
    throw new TypeError(`Bad value for --alphaFrom: cannot read ${path}: ${(e as Error).message}`);
  }
  if (typeof selected !== "number" || !(selected >= 0)) {
    throw new RangeError(
      `Bad value for --alphaFrom: ${path} has no selected_alpha ≥ 0, got ${selected}`,
    );
  }
  return selected;
}

/**
 * Runs the experiment with `--key=value` arguments and writes its outputs.
 *
 * @param args Command-line arguments (`--preset=`, `--methods=`, `--steps=`, `--out=`, …).
 * @throws {TypeError|RangeError} On an invalid flag, before any work.
 */
export async function main(args: string[]): Promise<void> {
  const { cfg, methods, labels } = await configure(args);
  if (cfg.merge !== "") return await merge(cfg);
  // The checkpoint folder is --checkpoints' (a fresh machine keeps them out of --out), so the
  // experiment opens only --out and this run makes its own folders.
  const experiment = await LmExperiment.open(cfg, { checkpoints: false });
  const { backend, data, valBatches } = experiment;
  const checkpoints = cfg.checkpoints || `${cfg.out}/checkpoints`;
  await Deno.mkdir(checkpoints, { recursive: true });
  await Deno.mkdir(`${cfg.out}/runs`, { recursive: true });
  const runConfig = (method: SparseMethod): GPTConfig =>
    modelConfig(cfg, data.vocab.size, sparseOptions(cfg, method));
  const shape = runConfig(methods[0]);
  // The GPU backend's attention path at this shape (SPEC §8.5); other backends have none to pick.
  const attentionPath = (backend as { attentionPath?: GpuBackend["attentionPath"] }).attentionPath;
  const path = attentionPath?.call(backend, {
    bh: cfg.batchSize * shape.nHead,
    T: cfg.blockSize,
    hd: shape.nEmbd / shape.nHead,
  });
  if (path !== undefined) console.log(`attention: ${path}`);
  const pos = cfg.pos ? await posData(cfg, data) : undefined;

  // Seed-major order: after the first seed every method has a row.
  const runs: { method: SparseMethod; seed: number }[] = [];
  for (let k = 0; k < cfg.seeds; k++) {
    for (const m of methods) runs.push({ method: m, seed: cfg.seed + k });
  }
  const results: MethodResult[] = [];
  for (const [i, run] of runs.entries()) {
    const label = runLabel(cfg.seed, run);
    const ckpt = `${checkpoints}/${runFileName(run)}.safetensors`;
    const startedAt = new Date().toISOString();
    console.log(`\n== [${i + 1}/${runs.length}] pre-training ${label}`);
    const { model, trainer, log } = await experiment.train(cfg, {
      label,
      sparse: sparseOptions(cfg, run.method),
      seed: run.seed,
      val: {
        batches: valBatches,
        every: cfg.evalEvery,
        dense: (t) => evaluatesDense(run.method, t.phase),
      },
      checkpoint: ckpt,
      checkpointEvery: cfg.checkpointEvery,
      resume: cfg.resume,
    });
    const valLoss = log.val.at(-1)![1];
    const evalDense = evaluatesDense(run.method, trainer.phase);
    const probe = pos === undefined ? undefined : await posProbe(model, pos.train, pos.val, {
      blockSize: cfg.blockSize,
      batchSize: cfg.batchSize,
      dense: evalDense,
      probe: { epochs: cfg.probeEpochs, lr: 1e-2, batchSize: 256, l2: 1e-4, seed: run.seed },
    });
    const ft = !cfg.genre ? undefined : await finetuneGenre({
      label,
      backend,
      model: runConfig(run.method),
      checkpoint: ckpt,
      data,
      passageTokens: cfg.passageTokens,
      maxPerDoc: cfg.maxPerDoc,
      labels,
      steps: cfg.finetuneSteps,
      batchSize: cfg.finetuneBatch,
      lr: cfg.finetuneLr,
      seed: run.seed,
    });
    const flips = log.steps.filter((s) => s.flipRate !== null);
    const r: MethodResult = {
      method: run.method,
      seed: run.seed,
      val_loss: valLoss,
      val_ppl: Math.exp(valLoss),
      finetune_acc: ft?.accuracy ?? null,
      finetune_majority: ft?.majority ?? null,
      finetune_evaluated_dense: ft?.evalDense ?? null,
      pos_acc: probe?.accuracy ?? null,
      pos_majority: probe?.majority ?? null,
      evaluated_dense: evalDense,
      train_loss_final: finalTrainLoss(log),
      flip_rate_final: flips.at(-1)?.flipRate ?? null,
      steps: cfg.steps,
      ...runTotals(log),
    };
    results.push(r);
    const record: RunRecord = {
      config: cfg,
      backend: backend.name,
      device: backend.device,
      started_at: startedAt,
      finished_at: new Date().toISOString(),
      result: r,
    };
    await Deno.writeTextFile(
      `${cfg.out}/runs/${runFileName(run)}.json`,
      JSON.stringify(record) + "\n",
    );
    const pct = (x: number | null) => x === null ? "–" : `${(100 * x).toFixed(1)}%`;
    console.log(
      `${label}: val loss ${valLoss.toFixed(4)} (ppl ${r.val_ppl.toFixed(1)}, evaluated ${
        evalDense ? "dense" : "2:4"
      }), POS ${pct(r.pos_acc)}${probe ? ` over ${probe.valTokens} tokens` : ""}, genre ${
        pct(r.finetune_acc)
      }${
        ft ? ` over ${ft.valPassages} passages (evaluated ${ft.evalDense ? "dense" : "2:4"})` : ""
      }, ${r.tokens_per_s.toFixed(0)} tok/s, ${formatSeconds(experiment.elapsed())} so far`,
    );
  }

  await writeOutputs(cfg, results, backend, experiment.elapsed());
  experiment.finish();
}

/** A run's name: the method, with `#seed` after the first seed. */
const runLabel = (firstSeed: number, r: { method: SparseMethod; seed: number }) =>
  r.seed === firstSeed ? r.method : `${r.method}#${r.seed}`;

/** A run's file name (no extension), the same whichever process trained it. */
const runFileName = (r: { method: SparseMethod; seed: number }) => `${r.method}_s${r.seed}`;

/** Mean training loss over the last 5% of a run's steps (at least one). */
function finalTrainLoss(log: RunLog): number {
  const tail = log.steps.slice(-Math.max(1, Math.round(log.steps.length / 20)));
  return tail.reduce((a, s) => a + s.loss, 0) / tail.length;
}

/** What a process writes for each finished run (`runs/<method>_s<seed>.json`), for `--merge`. */
interface RunRecord {
  config: Config;
  backend: string;
  device: string;
  started_at: string;
  finished_at: string;
  result: MethodResult;
}

/**
 * The keys that may differ between runs combined by `--merge`: which runs a process trained, where
 * it wrote them, and T-SR-STE's α (checked separately: one α for all transposable runs).
 */
const PER_PROCESS_KEYS: readonly (keyof Config)[] = [
  "methods",
  "seed",
  "seeds",
  "out",
  "resume",
  "checkpointEvery",
  "checkpoints",
  "merge",
  "backend",
  "alpha",
  "alphaFrom",
];

/**
 * Reads the run records of the `--merge` folders and checks they belong to one table: the same
 * configuration but for {@linkcode PER_PROCESS_KEYS}, one α over the transposable runs, no run
 * twice.
 *
 * @returns The records, seed-major (seed, then the order of SPEC 2.8's methods).
 * @throws {RangeError} On a folder without runs, a differing configuration or a duplicate run.
 */
export async function readRunRecords(dirs: readonly string[]): Promise<RunRecord[]> {
  const records: { record: RunRecord; path: string }[] = [];
  for (const dir of dirs) {
    const found: string[] = [];
    try {
      for await (const e of Deno.readDir(`${dir}/runs`)) {
        if (e.isFile && e.name.endsWith(".json")) found.push(`${dir}/runs/${e.name}`);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (found.length === 0) {
      throw new RangeError(`Cannot merge: ${dir}/runs holds no finished run`);
    }
    for (const path of found.sort()) {
      records.push({ record: JSON.parse(await Deno.readTextFile(path)), path });
    }
  }
  const shared = (c: Config) =>
    JSON.stringify(
      Object.entries(c).filter(([k]) => !PER_PROCESS_KEYS.includes(k as keyof Config)).sort(),
    );
  const base = records[0];
  const seen = new Set<string>();
  for (const { record, path } of records) {
    if (shared(record.config) !== shared(base.record.config)) {
      const key = Object.keys(base.record.config).find((k) =>
        !PER_PROCESS_KEYS.includes(k as keyof Config) &&
        JSON.stringify(record.config[k as keyof Config]) !==
          JSON.stringify(base.record.config[k as keyof Config])
      );
      throw new RangeError(
        `Cannot merge: ${path} was trained with --${key}=${
          record.config[key as keyof Config]
        }, ${base.path} with --${key}=${base.record.config[key as keyof Config]}`,
      );
    }
    const name = runFileName(record.result);
    if (seen.has(name)) throw new RangeError(`Cannot merge: ${name} is in more than one folder`);
    seen.add(name);
  }
  const alphas = new Set(
    records.filter(({ record }) => isTransposable(record.result.method))
      .map(({ record }) => record.config.alpha),
  );
  if (alphas.size > 1) {
    throw new RangeError(`Cannot merge: the T-SR-STE runs used different α: ${[...alphas]}`);
  }
  const order = (r: MethodResult) =>
    r.seed * SPARSE_METHODS.length + SPARSE_METHODS.indexOf(r.method);
  return records.map((r) => r.record).sort((a, b) => order(a.result) - order(b.result));
}

/** `--merge`: the outputs of the runs of other processes' folders, written to `--out`. */
async function merge(cfg: Config): Promise<void> {
  const dirs = parseList("merge", cfg.merge, (d) => d);
  const records = await readRunRecords(dirs);
  const results = records.map((r) => r.result);
  const seeds = [...new Set(results.map((r) => r.seed))];
  const transposable = records.find((r) => isTransposable(r.result.method));
  const merged: Config = {
    ...records[0].config,
    methods: [...new Set(results.map((r) => r.method))].join(","),
    seed: Math.min(...seeds),
    seeds: seeds.length,
    out: cfg.out,
    merge: cfg.merge,
    alpha: transposable?.config.alpha ?? records[0].config.alpha,
    alphaFrom: transposable?.config.alphaFrom ?? records[0].config.alphaFrom,
  };
  const times = (key: "started_at" | "finished_at") => records.map((r) => Date.parse(r[key]));
  const wall = (Math.max(...times("finished_at")) - Math.min(...times("started_at"))) / 1000;
  const devices = [...new Set(records.map((r) => r.device))].join(" / ");
  const backends = [...new Set(records.map((r) => r.backend))].join(" / ");
  await Deno.mkdir(cfg.out, { recursive: true });
  console.log(`merging ${records.length} runs from ${dirs.length} folders`);
  await writeOutputs(merged, results, { name: backends, device: devices }, wall);
}

/** "3 seeds", or "2–3 seeds" when methods have different numbers of finished runs. */
function seedCounts(results: readonly MethodResult[]): string {
  const counts = new Map<SparseMethod, number>();
  for (const r of results) counts.set(r.method, (counts.get(r.method) ?? 0) + 1);
  const lo = Math.min(...counts.values()), hi = Math.max(...counts.values());
  return `${lo === hi ? lo : `${lo}–${hi}`} seed${hi === 1 ? "" : "s"}`;
}

/** Whether a method trains with the transposable mask (T-SR-STE's α applies to it). */
const isTransposable = (m: SparseMethod) => sparseMethodTraits(m).weight === "transposable";

/** The part-of-speech windows of both splits (labels read once from the tagged corpus). */
async function posData(cfg: Config, data: LmData) {
  const t0 = performance.now();
  const tags = await cachedBrownPosTags(cfg.data, data.brown);
  const windows = (which: "train" | "val", perDoc: number) =>
    posWindows(data[which], tags[which], data.brown[which].documents, {
      blockSize: cfg.blockSize,
      perDoc,
    });
  const out = { train: windows("train", cfg.posPerDoc), val: windows("val", cfg.posValPerDoc) };
  console.log(
    `POS: ${out.train.count}/${out.val.count} train/val windows of ${cfg.blockSize} tokens ` +
      `(${formatSeconds((performance.now() - t0) / 1000)} to label the corpus)`,
  );
  return out;
}

/** A model is evaluated with its dense weights when its method or its current phase is dense. */
const evaluatesDense = (m: SparseMethod, phase: "sparse" | "dense") =>
  isDenseBaseline(m) || phase === "dense";

/** The baseline every table compares against: the method whose forward weight is plain `W`. */
const isDenseBaseline = (m: SparseMethod) => sparseMethodTraits(m).weight === "dense";

/** Whether the trainer's flip rate of a method's sparse phase is per mask refresh (SPEC 2.4). */
const perRefresh = (m: SparseMethod) => sparseMethodTraits(m).flipRateUnit === "refresh";

/**
 * A run's trainer flip rates as chart series: one per unit, so T-SR-STE's per-refresh rates of the
 * transposable mask are not joined to the per-step rates of its dense phase.
 */
function flipSeries(r: MethodResult, name: string): { name: string; points: [number, number][] }[] {
  const points = (phase: "sparse" | "dense") =>
    r.log.steps.filter((s) => s.flipRate !== null && s.step > 0 && (s.phase ?? "sparse") === phase)
      .map((s) => [s.step, s.flipRate!] as [number, number]);
  return [
    { name: perRefresh(r.method) ? `${name} (per refresh)` : name, points: points("sparse") },
    { name: `${name} (dense phase)`, points: points("dense") },
  ].filter((s) => s.points.length > 0);
}

/** The unit of a run's last trainer flip rate (see the table's note), from the phase it ran in. */
function flipUnit(r: MethodResult): string {
  const last = r.log.steps.findLast((s) => s.flipRate !== null);
  if (last?.phase === "dense") return " (dense phase)";
  return perRefresh(r.method) ? " /refresh" : "";
}

/** The per-run metrics the tables compare (higher is better except for the loss). */
const METRICS = ["val_loss", "pos_acc", "finetune_acc"] as const;
type Metric = typeof METRICS[number];

/** One claim of the papers (SPEC §5), judged from the paired differences `a − b` by seed. */
interface ClaimSpec {
  claim: string;
  source: string;
  a: SparseMethod;
  b: SparseMethod;
  metric: Metric;
  /** The claim about the true mean of `a − b`; a `within` margin relative to b's mean with `relative`. */
  test: Claim;
  relative?: boolean;
}

const CLAIMS: ClaimSpec[] = [
  {
    claim: "S-STE's loss is within 2% of dense",
    source: "P2 (SPEC §5)",
    a: "s-ste",
    b: "dense",
    metric: "val_loss",
    test: { kind: "within", margin: 0.02 },
    relative: true,
  },
  {
    claim: "T-SR-STE+DF's loss is within 2% of dense",
    source: "P1 (SPEC §5)",
    a: "t-sr-ste+df",
    b: "dense",
    metric: "val_loss",
    test: { kind: "within", margin: 0.02 },
    relative: true,
  },
  {
    claim: "T-SR-STE+DF ≈ S-STE (loss within 2%)",
    source: "SPEC §5",
    a: "t-sr-ste+df",
    b: "s-ste",
    metric: "val_loss",
    test: { kind: "within", margin: 0.02 },
    relative: true,
  },
  {
    claim: "S-STE's loss is below SR-STE's",
    source: "P2 (SPEC §5)",
    a: "s-ste",
    b: "sr-ste",
    metric: "val_loss",
    test: { kind: "below" },
  },
  {
    claim: "SR-STE's loss is below STE's",
    source: "P1, P2 (SPEC §5)",
    a: "sr-ste",
    b: "ste",
    metric: "val_loss",
    test: { kind: "below" },
  },
  {
    claim: "the dense fine-tune lowers the loss (T-SR-STE+DF below T-SR-STE)",
    source: "P1 (SPEC §2.5)",
    a: "t-sr-ste+df",
    b: "t-sr-ste",
    metric: "val_loss",
    test: { kind: "below" },
  },
  {
    claim: "FP8 costs little (S-STE+FP8 within 2% of S-STE)",
    source: "P2 Table 8 (SPEC §5)",
    a: "s-ste+fp8",
    b: "s-ste",
    metric: "val_loss",
    test: { kind: "within", margin: 0.02 },
    relative: true,
  },
  {
    claim: "S-STE's downstream accuracy (POS) is within 1 point of dense",
    source: "P2 Table 6",
    a: "s-ste",
    b: "dense",
    metric: "pos_acc",
    test: { kind: "within", margin: 0.01 },
  },
  {
    claim: "T-SR-STE+DF's downstream accuracy (POS) is within 1 point of dense",
    source: "P1 (GLUE)",
    a: "t-sr-ste+df",
    b: "dense",
    metric: "pos_acc",
    test: { kind: "within", margin: 0.01 },
  },
  {
    claim: "S-STE's fine-tuned genre accuracy is within 2 points of dense",
    source: "P2 Table 6",
    a: "s-ste",
    b: "dense",
    metric: "finetune_acc",
    test: { kind: "within", margin: 0.02 },
  },
];

/** A metric's values by seed for one method (runs where it was measured). */
function valuesOf(results: readonly MethodResult[], method: SparseMethod, metric: Metric) {
  return results.filter((r) => r.method === method && r[metric] !== null)
    .map((r) => ({ seed: r.seed, value: r[metric] as number }));
}

/** A metric of one method over its seeds, and its paired difference against dense. */
interface MetricStats {
  values: SeededValue[];
  interval: MeanInterval | null;
  difference_vs_dense:
    | { diffs: { seed: number; difference: number }[]; interval: MeanInterval | null }
    | null;
}
type MethodStats = { seeds: number[] } & Record<Metric, MetricStats>;

/** The 95% interval of the mean of values (null with fewer than two). */
function intervalOf(values: readonly number[]): MeanInterval | null {
  return values.length >= 2 ? meanInterval(values) : null;
}

/** The paired differences `a − b` by seed and their 95% interval. */
function pairedInterval(
  results: readonly MethodResult[],
  a: SparseMethod,
  b: SparseMethod,
  metric: Metric,
) {
  const diffs = pairedDifferences(valuesOf(results, a, metric), valuesOf(results, b, metric));
  return { diffs, interval: intervalOf(diffs.map((d) => d.difference)) };
}

/**
 * Writes `summary.json`, `table.md` and the charts of the finished runs.
 *
 * @param wallSeconds The wall time of the runs (of one process, or from the first start to the
 * last finish of merged ones).
 */
async function writeOutputs(
  cfg: Config,
  results: MethodResult[],
  backend: { name: string; device: string },
  wallSeconds: number,
) {
  // configure() rejects an empty method list; this guard keeps an empty run from ever replacing
  // the outputs of a real one.
  if (results.length === 0) throw new RangeError("Cannot write the outputs: no run finished");
  const methods = [...new Set(results.map((r) => r.method))];
  const dense = methods.find(isDenseBaseline);
  const perMethod: Record<string, MethodStats> = {};
  for (const m of methods) {
    const stats = { seeds: results.filter((r) => r.method === m).map((r) => r.seed) };
    for (const metric of METRICS) {
      const values = valuesOf(results, m, metric);
      (stats as MethodStats)[metric] = {
        values,
        interval: intervalOf(values.map((v) => v.value)),
        difference_vs_dense: dense === undefined || m === dense
          ? null
          : pairedInterval(results, m, dense, metric),
      };
    }
    perMethod[m] = stats as MethodStats;
  }
  const seeds = [...new Set(results.map((r) => r.seed))].sort((a, b) => a - b);
  const firstSeed = seeds[0];
  // A claim needs both methods, and its metric measured (no genre row without genre fine-tuning).
  const measured = (c: ClaimSpec) =>
    methods.includes(c.a) && methods.includes(c.b) && results.some((r) => r[c.metric] !== null);
  const claims = CLAIMS.filter(measured).map((c) => {
    const { diffs, interval } = pairedInterval(results, c.a, c.b, c.metric);
    const base = valuesOf(results, c.b, c.metric).map((v) => v.value);
    const test: Claim = c.test.kind === "within" && c.relative && base.length > 0
      ? { kind: "within", margin: c.test.margin * mean(base) }
      : c.test;
    return {
      claim: c.claim,
      source: c.source,
      metric: c.metric,
      difference: `${c.a} − ${c.b}`,
      test,
      pairs: diffs.length,
      interval,
      verdict: verdict(interval, test),
    };
  });
  const majority = (key: "pos_majority" | "finetune_majority") =>
    results.find((r) => r[key] !== null)?.[key] ?? null;
  const summary = {
    ...summaryHeader("gpt2", new Date().toISOString(), backend, performance.now(), cfg),
    wall_seconds: wallSeconds,
    mask_refresh: maskRefreshOf(cfg),
    pos_majority_tag_acc: majority("pos_majority"),
    finetune_majority_class_acc: majority("finetune_majority"),
    methods: perMethod,
    claims,
    runs: Object.fromEntries(results.map((r) => [runLabel(firstSeed, r), {
      ...Object.fromEntries(Object.entries(r).filter(([k]) => k !== "log" && k !== "method")),
      method: r.method,
      val_curve: r.log.val,
    }])),
  };
  await writeSummary(cfg.out, summary);

  const num = (x: number, digits: number, sign = false) =>
    `${sign && x >= 0 ? "+" : ""}${x.toFixed(digits)}`.replace("-", "−");
  const scale = (metric: Metric) => metric === "val_loss" ? 1 : 100;
  const digits = (metric: Metric) => metric === "val_loss" ? 4 : 1;
  const meanCell = (m: SparseMethod, metric: Metric) => {
    const values = perMethod[m][metric].values.map((v) => v.value);
    if (values.length === 0) return "–";
    const iv = intervalOf(values);
    const k = scale(metric), d = digits(metric);
    return iv === null
      ? num(k * values[0], d)
      : `${num(k * iv.mean, d)} ± ${num(k * iv.halfWidth, d)}`;
  };
  const intervalCell = (iv: MeanInterval | null, metric: Metric) => {
    if (iv === null) return "–";
    const k = scale(metric), d = digits(metric);
    return `${num(k * iv.mean, d, true)} [${num(k * iv.low, d, true)}, ${
      num(k * iv.high, d, true)
    }]`;
  };
  const deltaCell = (m: SparseMethod, metric: Metric) =>
    m === dense
      ? "(baseline)"
      : intervalCell(perMethod[m][metric].difference_vs_dense?.interval ?? null, metric);
  const primary = (m: SparseMethod) => results.find((r) => r.method === m)!;
  const posMajority = summary.pos_majority_tag_acc;
  const genreMajority = summary.finetune_majority_class_acc;
  const lines = [
    `# GPT-2 on Brown: 2:4 methods (P1 GPT-2 tables / P2 Table 6, scaled down)`,
    ``,
    producedBy(cfg, {
      script: "gpt2.ts",
      header: summary,
      details: `T-SR-STE mask refresh every ${
        maskRefreshOf(cfg)
      } steps, α ${cfg.alpha.toExponential()}${
        cfg.alphaFrom ? ` selected by \`${cfg.alphaFrom}\`` : ""
      }`,
    }) +
    `, ${formatSeconds(wallSeconds)}; ${seedCounts(results)} per method (${seeds.join(", ")}), ` +
    `validation on ${cfg.evalBatches} batches of ${cfg.batchSize}×${cfg.blockSize} tokens` +
    (cfg.merge ? `; ${results.length} runs of separate processes combined by \`--merge\`.` : "."),
    ``,
    `Means ± the half-width of the 95% Student-t interval over seeds; Δ = paired difference ` +
    `against dense of the same seed (same initial weights and data order), mean [95% interval].`,
    ``,
    `| method | seeds | val loss | Δ loss vs dense | POS acc (%) | Δ POS (points) | genre acc (%) | Δ genre (points) | evaluated | final flip rate | tokens/s |`,
    `|---|---|---|---|---|---|---|---|---|---|---|`,
    ...methods.map((m) => {
      const r = primary(m);
      return `| ${m} | ${perMethod[m].seeds.length} | ${meanCell(m, "val_loss")} | ${
        deltaCell(m, "val_loss")
      } | ${meanCell(m, "pos_acc")} | ${deltaCell(m, "pos_acc")} | ${
        meanCell(m, "finetune_acc")
      } | ${deltaCell(m, "finetune_acc")} | ${r.evaluated_dense ? "dense" : "2:4"} | ${
        r.flip_rate_final === null ? "–" : r.flip_rate_final.toExponential(2) + flipUnit(r)
      } | ${r.tokens_per_s.toFixed(0)} |`;
    }),
    ``,
    `## The papers' claims, judged from the intervals`,
    ``,
    `*agrees*: the whole 95% interval of the paired difference satisfies the claim; *disagrees*: ` +
    `the whole interval contradicts it; *inconclusive*: it straddles the boundary (or fewer than ` +
    `two seeds). "Within 2%" is ±2% of the second method's mean loss.`,
    ``,
    `| claim | source | difference | mean [95% interval] | verdict |`,
    `|---|---|---|---|---|`,
    ...claims.map((c) =>
      `| ${c.claim} | ${c.source} | ${c.difference} (${c.metric}, ${c.pairs} seeds) | ${
        intervalCell(c.interval, c.metric)
      } | **${c.verdict}** |`
    ),
    ``,
    `Evaluation (P2 Table 6): the validation loss and the POS probe's features use the weights ` +
    `the model computes with at the end of pre-training (β·S(W) for S-STE, W̃ for STE, SR-STE ` +
    `and T-SR-STE, dense W for dense and T-SR-STE+DF after its dense phase). Genre fine-tuning: ` +
    `S-STE with β·S(W) and a plain backward (no MVUE, no FP8), evaluated 2:4; every other ` +
    `method fine-tuned and evaluated dense.`,
    ``,
    `POS: a linear probe on the frozen model's final hidden states, trained on the training ` +
    `documents' tokens and scored on the validation documents' (12 universal tags); always ` +
    `answering the most frequent tag scores ${
      posMajority === null ? "–" : (100 * posMajority).toFixed(1) + "%"
    }. ` +
    `Genre: always answering the most frequent class scores ${
      genreMajority === null ? "–" : (100 * genreMajority).toFixed(1) + "%"
    }.`,
    ``,
    `Final flip rate (SPEC 2.4), of the first seed: per step, of the hard top-2 mask, for dense, ` +
    `STE, SR-STE and S-STE; per refresh (${maskRefreshOf(cfg)} steps) of the transposable mask ` +
    `for T-SR-STE; per step of the hard mask in T-SR-STE+DF's dense phase.`,
    ``,
    `## Every run`,
    ``,
    `Train loss: the mean training loss of the last 5% of the steps (on batches not yet seen ` +
    `when the run stays within one epoch), beside the validation loss of held-out documents.`,
    ``,
    `| run | train loss | val loss | POS acc | genre acc | train s |`,
    `|---|---|---|---|---|---|`,
    ...results.map((r) =>
      `| ${runLabel(firstSeed, r)} | ${r.train_loss_final.toFixed(4)} | ${
        r.val_loss.toFixed(4)
      } | ${r.pos_acc === null ? "–" : (100 * r.pos_acc).toFixed(2) + "%"} | ${
        r.finetune_acc === null ? "–" : (100 * r.finetune_acc).toFixed(1) + "%"
      } | ${r.train_seconds.toFixed(0)} |`
    ),
    ``,
  ];
  await Deno.writeTextFile(`${cfg.out}/table.md`, lines.join("\n"));

  const smooth = (log: RunLog, k = 10) =>
    log.steps.map((s, i, all) => {
      const w = all.slice(Math.max(0, i - k + 1), i + 1);
      return [s.step + 1, w.reduce((a, b) => a + b.loss, 0) / w.length] as [number, number];
    });
  // The charts show the first seed of each method (every seed's numbers are in the tables).
  const firstRuns = results.filter((r) => r.seed === firstSeed);
  await Deno.writeTextFile(
    `${cfg.out}/loss.svg`,
    lineChart(
      firstRuns.map((r) => ({ name: r.method, points: smooth(r.log) })),
      { title: "GPT-2 training loss (10-step mean, first seed)", xLabel: "step", yLabel: "loss" },
    ),
  );
  await Deno.writeTextFile(
    `${cfg.out}/val_loss.svg`,
    lineChart(
      firstRuns.map((r) => ({ name: r.method, points: r.log.val })),
      { title: "GPT-2 validation loss (first seed)", xLabel: "step", yLabel: "loss" },
    ),
  );
  await Deno.writeTextFile(
    `${cfg.out}/flip_rate.svg`,
    lineChart(
      firstRuns.flatMap((r) => flipSeries(r, r.method)),
      { title: "Flip rate (SPEC 2.4)", xLabel: "step", yLabel: "flip rate", logY: true },
    ),
  );
  console.log(`\n${lines.join("\n")}`);
  console.log(`wrote ${cfg.out}/{summary.json,table.md,loss.svg,val_loss.svg,flip_rate.svg}`);
}

if (import.meta.main) await runCli(main);
