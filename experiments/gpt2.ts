/**
 * GPT-2 pre-training with every 2:4 method, then genre fine-tuning — the scaled-down reproduction
 * of P1's GPT-2 tables and P2's Table 6 (SPEC §6).
 *
 * What it does: trains the same GPT-2 (same initial weights, same data order, same schedule) with
 * each method of SPEC 2.8 on the Brown corpus (GPT-2 BPE), reports validation loss and perplexity
 * on held-out documents, then fine-tunes each pre-trained model on genre classification of Brown
 * passages (the GLUE stand-in; T-SR-STE+DF evaluated dense, S-STE with its 2:4 weights) and reports
 * accuracy. Dense is trained with two seeds so the table states the run-to-run spread.
 *
 * What to expect (SPEC §5): dense ≲ T-SR-STE+DF ≈ S-STE < SR-STE < STE in loss; at this tiny scale
 * and step count the gaps are small and the seed spread says which of them are real.
 *
 * Usage:
 *   deno task gpt2                                   # CPU-sized default preset, all methods
 *   deno task gpt2 --preset=gpu --backend=webgpu     # a larger model on a real GPU
 *   deno task gpt2 --methods=dense,s-ste --steps=100 --resume
 *
 * Outputs (in `--out`, default `results/gpt2`): `summary.json`, `table.md`, `loss.svg`,
 * `flip_rate.svg`, and per-method checkpoints under `checkpoints/` (for `--resume`).
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
import { lineChart } from "./_plot.ts";
import { assertInt, assertOneOf, parseConfig, parseList, runCli } from "./_config.ts";
import {
  checkFinetuneConfig,
  checkLmConfig,
  DATA_DIR,
  finetuneGenre,
  formatSeconds,
  loadLmData,
  modelConfig,
  type RunLog,
  selectBackend,
  trainRun,
  validationBatches,
} from "./_lm.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "cpu", // cpu | cpu-tiny | gpu | gpu-124m
  methods: SPARSE_METHODS.join(","),
  steps: 120, // optimizer steps of pre-training
  seed: 1, // initialisation, data order and MVUE seed
  denseSeeds: 2, // dense is trained with this many seeds (seed, seed+1, …) to state the spread
  backend: "auto", // auto | cpu | reference | webgpu
  out: "results/gpt2",
  resume: false, // continue every run from its checkpoint (a bare --resume means true)
  checkpointEvery: 100, // steps between checkpoints (and one at the end of each run)
  data: DATA_DIR,
  vocab: 4096, // reduced vocabulary (0 = the full 50,257 GPT-2 ids)
  nLayer: 2,
  nHead: 4,
  nEmbd: 128,
  blockSize: 64,
  batchSize: 16,
  lr: 1e-3, // peak learning rate
  warmup: 12, // linear warm-up steps
  minLr: 1e-4, // cosine floor
  evalEvery: 30,
  evalBatches: 8,
  alpha: 6e-5, // T-SR-STE masked decay (P1's GPT-2 124M value)
  maskRefresh: 40, // T-SR-STE transposable-mask refresh period
  finetuneSteps: 40,
  finetuneBatch: 16,
  finetuneLr: 1e-3,
  passageTokens: 64,
  maxPerDoc: 8,
  labels: "group", // genre | group (4-way) | binary
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  // Sized for the 20-minute budget of the README's first command on 2 CPU cores through the
  // software WebGPU adapter (8 runs: 7 methods and a second dense seed, each pre-trained and
  // fine-tuned): 2 layers × 128 wide, context 64, batch 16 (1,024 tokens a step), ~0.4M
  // non-embedding parameters. The vocabulary is the point: with all 50,257 GPT-2 ids the output
  // layer costs 6·V·d ≈ 38.6M FLOPs per token, 16× the two blocks (6·12·d²·L ≈ 2.4M); the 4,096
  // most frequent training ids (the rest map to <unk>, 16% of training tokens) bring it to 3.1M.
  // Measured on this preset (llvmpipe, 2 cores): ~1,430 tokens/s, ~2 minutes a run.
  cpu: {},
  // The test suite's smoke run.
  "cpu-tiny": {
    steps: 12,
    vocab: 512,
    nLayer: 1,
    nHead: 2,
    nEmbd: 32,
    blockSize: 16,
    batchSize: 4,
    warmup: 2,
    evalEvery: 6,
    evalBatches: 2,
    maskRefresh: 4,
    finetuneSteps: 4,
    finetuneBatch: 4,
    passageTokens: 16,
    maxPerDoc: 1,
    denseSeeds: 2,
  },
  // A GPU-sized model (full vocabulary); a few minutes per method on an H100 through WebGPU.
  gpu: {
    vocab: 0,
    nLayer: 6,
    nHead: 8,
    nEmbd: 512,
    blockSize: 256,
    batchSize: 16,
    steps: 600,
    lr: 6e-4,
    warmup: 60,
    minLr: 6e-5,
    evalEvery: 100,
    evalBatches: 16,
    finetuneSteps: 200,
    finetuneBatch: 32,
    finetuneLr: 3e-4,
    passageTokens: 128,
  },
  // GPT-2 124M shapes (SPEC §4), seq 1024.
  "gpu-124m": {
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
    evalBatches: 8,
    finetuneSteps: 100,
    finetuneBatch: 16,
    finetuneLr: 3e-4,
    passageTokens: 256,
  },
};

interface MethodResult {
  method: SparseMethod;
  seed: number;
  val_loss: number;
  val_ppl: number;
  finetune_acc: number;
  finetune_majority: number;
  /** Whether the fine-tuned model was evaluated dense (else with its 2:4 weights). */
  evaluated_dense: boolean;
  flip_rate_final: number | null;
  steps: number;
  tokens_per_s: number;
  train_seconds: number;
  log: RunLog;
}

/** A method's sparse options: T-SR-STE's α and refresh period come from the config block. */
function sparseOptions(cfg: Config, method: SparseMethod): SparseOptions {
  const transposable = sparseMethodTraits(method).weight === "transposable";
  return { method, ...(transposable ? { alpha: cfg.alpha, maskRefresh: cfg.maskRefresh } : {}) };
}

/**
 * Validates every flag before any work (training, data preparation or output).
 *
 * @returns The configuration, the methods to train and the fine-tuning label set.
 * @throws {TypeError|RangeError} On the first invalid flag.
 */
function configure(args: string[]) {
  const cfg = parseConfig(defaults, args, presets);
  const methods = parseList(
    "methods",
    cfg.methods,
    (m) => assertOneOf("methods", m, SPARSE_METHODS),
  );
  assertInt("denseSeeds", cfg.denseSeeds, 1, 10);
  assertInt("evalEvery", cfg.evalEvery, 0);
  checkLmConfig(cfg, methods.map((m) => sparseOptions(cfg, m)));
  const labels = checkFinetuneConfig(cfg);
  return { cfg, methods, labels };
}

/**
 * Runs the experiment with `--key=value` arguments and writes its outputs.
 *
 * @param args Command-line arguments (`--preset=`, `--methods=`, `--steps=`, `--out=`, …).
 * @throws {TypeError|RangeError} On an invalid flag, before any work.
 */
export async function main(args: string[]): Promise<void> {
  const { cfg, methods, labels } = configure(args);
  await Deno.mkdir(`${cfg.out}/checkpoints`, { recursive: true });
  console.log("config:", JSON.stringify(cfg));
  const started = performance.now();
  const backend = await selectBackend(cfg.backend);
  console.log(`backend: ${backend.name} on ${backend.device}`);
  const data = await loadLmData(cfg.data, cfg.vocab);
  const valBatches = validationBatches(data, cfg.batchSize, cfg.blockSize, cfg.evalBatches);
  const runConfig = (method: SparseMethod): GPTConfig =>
    modelConfig(cfg, data.vocab.size, sparseOptions(cfg, method));

  const runs: { method: SparseMethod; seed: number }[] = [];
  for (const m of methods) {
    const seeds = isDenseBaseline(m) ? cfg.denseSeeds : 1;
    for (let k = 0; k < seeds; k++) runs.push({ method: m, seed: cfg.seed + k });
  }
  const results: MethodResult[] = [];
  for (const [i, run] of runs.entries()) {
    const label = run.seed === cfg.seed ? run.method : `${run.method}#${run.seed}`;
    const ckpt = `${cfg.out}/checkpoints/${label.replace(/[^a-z0-9#+-]/gi, "_")}.safetensors`;
    console.log(`\n== [${i + 1}/${runs.length}] pre-training ${label}`);
    const { log } = await trainRun({
      label,
      backend,
      model: runConfig(run.method),
      initSeed: run.seed,
      trainer: {
        totalSteps: cfg.steps,
        peakLr: cfg.lr,
        warmupSteps: cfg.warmup,
        minLr: cfg.minLr,
        seed: run.seed,
      },
      tokens: data.train,
      batchSize: cfg.batchSize,
      blockSize: cfg.blockSize,
      dataSeed: run.seed,
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
    const ft = await finetuneGenre({
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
      finetune_acc: ft.accuracy,
      finetune_majority: ft.majority,
      evaluated_dense: ft.evalDense,
      flip_rate_final: flips.at(-1)?.flipRate ?? null,
      steps: cfg.steps,
      tokens_per_s: log.tokens / log.trainSeconds,
      train_seconds: log.trainSeconds,
      log,
    };
    results.push(r);
    console.log(
      `${label}: val loss ${valLoss.toFixed(4)} (ppl ${r.val_ppl.toFixed(1)}), genre accuracy ${
        (100 * ft.accuracy).toFixed(1)
      }% over ${ft.valPassages} passages (${ft.classes} classes, evaluated ${
        ft.evalDense ? "dense" : "2:4"
      }), ${r.tokens_per_s.toFixed(0)} tok/s`,
    );
  }

  await writeOutputs(cfg, results, backend.name, backend.device, started);
  console.log(`\nfinished in ${formatSeconds((performance.now() - started) / 1000)}`);
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

async function writeOutputs(
  cfg: Config,
  results: MethodResult[],
  backendName: string,
  device: string,
  started: number,
) {
  // configure() rejects an empty method list; this guard keeps an empty run from ever replacing
  // the outputs of a real one.
  if (results.length === 0) throw new RangeError("Cannot write the outputs: no run finished");
  const primary = results.filter((r) => r.seed === cfg.seed);
  const dense = results.filter((r) => isDenseBaseline(r.method));
  const spread = dense.length > 1
    ? Math.max(...dense.map((r) => r.val_loss)) - Math.min(...dense.map((r) => r.val_loss))
    : null;
  const accSpread = dense.length > 1
    ? Math.max(...dense.map((r) => r.finetune_acc)) - Math.min(...dense.map((r) => r.finetune_acc))
    : null;
  const summary = {
    experiment: "gpt2",
    date: new Date().toISOString(),
    backend: backendName,
    device,
    wall_seconds: (performance.now() - started) / 1000,
    config: cfg,
    finetune_majority_class_acc: results[0]?.finetune_majority ?? null,
    dense_seed_spread: {
      val_loss: spread,
      finetune_acc: accSpread,
      seeds: dense.map((r) => r.seed),
    },
    methods: Object.fromEntries(
      results.map((r) => [
        r.seed === cfg.seed ? r.method : `${r.method}#${r.seed}`,
        {
          val_loss: r.val_loss,
          val_ppl: r.val_ppl,
          finetune_acc: r.finetune_acc,
          flip_rate_final: r.flip_rate_final,
          steps: r.steps,
          tokens_per_s: r.tokens_per_s,
          train_seconds: r.train_seconds,
          seed: r.seed,
          val_curve: r.log.val,
        },
      ]),
    ),
  };
  await Deno.writeTextFile(`${cfg.out}/summary.json`, JSON.stringify(summary, null, 1) + "\n");

  const denseRef = primary.find((r) => isDenseBaseline(r.method));
  const lines = [
    `# GPT-2 on Brown: 2:4 methods (P1 GPT-2 tables / P2 Table 6, scaled down)`,
    ``,
    `Produced by \`experiments/gpt2.ts\` (preset \`${cfg.preset}\`, ${cfg.steps} steps, ` +
    `${cfg.nLayer} layers × ${cfg.nEmbd} wide, ${cfg.nHead} heads, context ${cfg.blockSize}, ` +
    `batch ${cfg.batchSize}, vocabulary ${cfg.vocab || 50257}) on ${backendName} (${device}), ` +
    `${summary.date.slice(0, 10)}.`,
    ``,
    `| method | val loss | val ppl | Δ loss vs dense | genre acc (${cfg.labels}) | evaluated | final flip rate | tokens/s |`,
    `|---|---|---|---|---|---|---|---|`,
    ...results.map((r) => {
      const name = r.seed === cfg.seed ? r.method : `${r.method} (seed ${r.seed})`;
      const delta = denseRef ? (r.val_loss - denseRef.val_loss).toFixed(4) : "–";
      const evaluated = r.evaluated_dense ? "dense" : "2:4";
      return `| ${name} | ${r.val_loss.toFixed(4)} | ${r.val_ppl.toFixed(2)} | ${delta} | ${
        (100 * r.finetune_acc).toFixed(1)
      }% | ${evaluated} | ${
        r.flip_rate_final === null ? "–" : r.flip_rate_final.toExponential(2) + flipUnit(r)
      } | ${r.tokens_per_s.toFixed(0)} |`;
    }),
    ``,
    `Final flip rate (SPEC 2.4) is the trainer's last one: per step, of the hard top-2 mask, for ` +
    `dense, STE, SR-STE and S-STE; per refresh (${cfg.maskRefresh} steps) of the transposable ` +
    `mask for T-SR-STE; per step of the hard mask in T-SR-STE+DF's dense phase.`,
    ``,
    `Genre accuracy is over the validation passages; always answering the most frequent class ` +
    `scores ${(100 * (results[0]?.finetune_majority ?? 0)).toFixed(1)}%.`,
    ``,
    spread === null
      ? `Seed spread: only one dense seed was run, so no spread is stated.`
      : `Seed spread: dense trained with seeds ${
        dense.map((r) => r.seed).join(" and ")
      } differs by ${spread.toFixed(4)} in validation loss and ${
        (100 * accSpread!).toFixed(1)
      } points in genre accuracy; differences between methods smaller than that are not ` +
        `distinguishable from noise at this scale.`,
    ``,
  ];
  await Deno.writeTextFile(`${cfg.out}/table.md`, lines.join("\n"));

  const smooth = (log: RunLog, k = 10) =>
    log.steps.map((s, i, all) => {
      const w = all.slice(Math.max(0, i - k + 1), i + 1);
      return [s.step + 1, w.reduce((a, b) => a + b.loss, 0) / w.length] as [number, number];
    });
  const label = (r: MethodResult) => r.seed === cfg.seed ? r.method : `${r.method} #${r.seed}`;
  await Deno.writeTextFile(
    `${cfg.out}/loss.svg`,
    lineChart(
      results.map((r) => ({ name: label(r), points: smooth(r.log) })),
      { title: "GPT-2 training loss (10-step mean)", xLabel: "step", yLabel: "loss" },
    ),
  );
  await Deno.writeTextFile(
    `${cfg.out}/val_loss.svg`,
    lineChart(
      results.map((r) => ({ name: label(r), points: r.log.val })),
      { title: "GPT-2 validation loss", xLabel: "step", yLabel: "loss" },
    ),
  );
  await Deno.writeTextFile(
    `${cfg.out}/flip_rate.svg`,
    lineChart(
      results.flatMap((r) => flipSeries(r, label(r))),
      { title: "Flip rate (SPEC 2.4)", xLabel: "step", yLabel: "flip rate", logY: true },
    ),
  );
  console.log(`\n${lines.join("\n")}`);
  console.log(`wrote ${cfg.out}/{summary.json,table.md,loss.svg,val_loss.svg,flip_rate.svg}`);
}

if (import.meta.main) await runCli(main);
