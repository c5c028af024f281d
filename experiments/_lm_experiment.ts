/**
 * What every run of a language-model experiment does the same way (`LmExperiment`: open the
 * output folder, backend and data; announce, seed and train a run; date the summary; finish), what
 * a results table keeps of a run (`RunTotals`) and says of where it ran (`producedBy`, `ranOn`).
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import type { Batch, GPT } from "../core/gpt2.ts";
import type { SparseOptions } from "../core/sparse.ts";
import type { Trainer } from "../core/trainer.ts";
import { GPT2_VOCAB_SIZE } from "../core/data/mod.ts";
import {
  formatSeconds,
  type LmData,
  type LmRunConfig,
  loadLmData,
  modelConfig,
  type RunLog,
  selectBackend,
  sparseKernelsLine,
  summaryHeader,
  trainRun,
  type TrainRunOptions,
  validationBatches,
} from "./lm.ts";

/** The configuration keys a results table's provenance line names. */
type DescribedConfig =
  & Pick<
    LmRunConfig,
    "steps" | "nLayer" | "nEmbd" | "nHead" | "blockSize" | "batchSize" | "vocab"
  >
  & { preset: string };

/**
 * A results table's provenance line: `Produced by \`experiments/<script>\` (preset \`cpu\`, 200
 * steps, 2 layers × 128 wide, 4 heads, context 64, batch 8, vocabulary 2048, <details>) on
 * <backend> (<device>), <date>` (vocabulary 50257: the full GPT-2 vocabulary).
 *
 * @param cfg The configuration (preset, steps, model and batch).
 * @param source The script's file name, its summary's opening fields and what else to name.
 */
export function producedBy(
  cfg: DescribedConfig,
  source: {
    script: string;
    header: { backend: string; device: string; date: string };
    details: string;
  },
): string {
  return `Produced by \`experiments/${source.script}\` (preset \`${cfg.preset}\`, ${cfg.steps} ` +
    `steps, ${cfg.nLayer} layers × ${cfg.nEmbd} wide, ${cfg.nHead} heads, context ` +
    `${cfg.blockSize}, batch ${cfg.batchSize}, vocabulary ${cfg.vocab || GPT2_VOCAB_SIZE}, ` +
    `${source.details}) on ${ranOn(source.header)}`;
}

/** Where and when a summary's runs ran, for a table's header: `cpu (OpenBLAS …), 2026-12-06`. */
export function ranOn(header: { backend: string; device: string; date: string }): string {
  return `${header.backend} (${header.device}), ${header.date.slice(0, 10)}`;
}

// ---- an experiment and its runs ---------------------------------------------------------------

/** What every results table keeps of a finished run: its throughput, training time and log. */
export interface RunTotals {
  tokens_per_s: number;
  train_seconds: number;
  log: RunLog;
}

/** A finished run's {@linkcode RunTotals}. */
export function runTotals(log: RunLog): RunTotals {
  return { tokens_per_s: log.tokens / log.trainSeconds, train_seconds: log.trainSeconds, log };
}

/** The configuration keys an experiment's opening and its runs read. */
type ExperimentConfig = Pick<LmRunConfig, "backend" | "vocab" | "batchSize" | "blockSize"> & {
  out: string;
  data: string;
  evalBatches?: number;
};

/** The configuration keys of one seed's pre-training: model shape, batch and cosine schedule. */
type SeededRunConfig = Pick<
  LmRunConfig,
  "nLayer" | "nHead" | "nEmbd" | "blockSize" | "batchSize" | "steps" | "lr" | "warmup" | "minLr"
>;

/** What {@linkcode LmExperiment.train} fills in of {@linkcode trainRun}'s options. */
type SeededKeys =
  | "label"
  | "backend"
  | "model"
  | "initSeed"
  | "trainer"
  | "tokens"
  | "batchSize"
  | "blockSize"
  | "dataSeed";

/**
 * A language-model experiment under way: its start time, backend, data and validation batches,
 * and what each of its runs does the same way (progress line, seeding, summary opening).
 */
export class LmExperiment {
  private constructor(
    /** `performance.now()` when the work began (for the elapsed time and the summary). */
    readonly started: number,
    readonly backend: Backend,
    readonly data: LmData,
    /** `evalBatches` fixed validation batches (none without `evalBatches`). */
    readonly valBatches: Batch[],
  ) {}

  /**
   * Opens an experiment once its flags are checked: creates the output folder (and
   * `checkpoints/` in it), prints the configuration, creates the backend and loads the data.
   *
   * @param cfg The checked configuration.
   * @param options `checkpoints`: also create `<out>/checkpoints` (default true).
   */
  static async open(
    cfg: ExperimentConfig,
    options: { checkpoints?: boolean } = {},
  ): Promise<LmExperiment> {
    const dir = options.checkpoints ?? true ? `${cfg.out}/checkpoints` : cfg.out;
    await Deno.mkdir(dir, { recursive: true });
    console.log("config:", JSON.stringify(cfg));
    const started = performance.now();
    const backend = await selectBackend(cfg.backend);
    console.log(`backend: ${backend.name} on ${backend.device}`);
    const kernels = sparseKernelsLine(backend);
    if (kernels !== undefined) console.log(kernels);
    const data = await loadLmData(cfg.data, cfg.vocab);
    const val = validationBatches(data, cfg.batchSize, cfg.blockSize, cfg.evalBatches ?? 0);
    return new LmExperiment(started, backend, data, val);
  }

  /** Seconds since the work began. */
  elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  /**
   * Prints a run's progress line, `== [3/13] label  (2m10s elapsed, about 8m40s left)`, the
   * time left extrapolated from the runs done.
   */
  announce(progress: { done: number; total: number; label: string }): void {
    const { done, total, label } = progress;
    const elapsed = this.elapsed();
    const left = done > 0 ? `, about ${formatSeconds((elapsed / done) * (total - done))} left` : "";
    console.log(`\n== [${done + 1}/${total}] ${label}  (${formatSeconds(elapsed)} elapsed${left})`);
  }

  /**
   * Trains one seed's run ({@linkcode trainRun}): the config block's model with `run.sparse`, its
   * cosine schedule, and `run.seed` for the initialisation, the data order and the trainer's MVUE
   * draws, so runs of one seed differ only in their method.
   *
   * @param cfg The configuration (model shape, batch, schedule).
   * @param run The run's label, sparse options and seed; the rest of `trainRun`'s options.
   */
  train(
    cfg: SeededRunConfig,
    run: { label: string; sparse: SparseOptions; seed: number } & Omit<TrainRunOptions, SeededKeys>,
  ): Promise<{ model: GPT; trainer: Trainer; log: RunLog }> {
    const { label, sparse, seed, ...rest } = run;
    return trainRun({
      label,
      backend: this.backend,
      model: modelConfig(cfg, this.data.vocab.size, sparse),
      initSeed: seed,
      trainer: {
        totalSteps: cfg.steps,
        peakLr: cfg.lr,
        warmupSteps: cfg.warmup,
        minLr: cfg.minLr,
        seed,
      },
      tokens: this.data.train,
      batchSize: cfg.batchSize,
      blockSize: cfg.blockSize,
      dataSeed: seed,
      ...rest,
    });
  }

  /** The opening fields of the experiment's `summary.json`, dated now ({@linkcode summaryHeader}). */
  summaryHeader<C>(experiment: string, config: C): ReturnType<typeof summaryHeader<C>> {
    return summaryHeader(experiment, new Date().toISOString(), this.backend, this.started, config);
  }

  /** Prints the closing `finished in …` line. */
  finish(): void {
    console.log(`\nfinished in ${formatSeconds(this.elapsed())}`);
  }
}
