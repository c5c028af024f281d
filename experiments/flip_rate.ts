/**
 * Flip-rate curves — the scaled-down reproduction of P1's flip-rate figure (flip rate of STE,
 * SR-STE and masked decay with several decay factors during GPT-2 pre-training) and P2 Fig. 4
 * (flip rate of S-STE against SR-STE, frozen against dynamic β), plus the warm-up selection of the
 * masked-decay factor α of SPEC 2.3.
 *
 * What it does: trains the same GPT-2 (same initial weights, same data order, same schedule) on
 * the Brown corpus with
 * - `dense` (flip rate of the would-be hard top-2 mask of its weights), `ste`;
 * - `sr-ste` with its decay of the pruned weights on the gradient and on the weight (SPEC 2.2);
 * - `t-sr-ste` with α ∈ `--alphas` (default {0, 6e-6, 6e-5, 2e-4, 1e-3} — P1's values — plus
 *   1e-2 and 1e-1; SPEC 2.3);
 * - `s-ste` with the frozen (`mse-frozen`) and the dynamic (`mse-dynamic`) β (SPEC 1.3);
 * and records two flip rates (SPEC 2.4) for every run:
 * - **hard flip rate, per step** — the fraction of the hard top-2 mask bits of the dense weights
 *   that one optimizer step changed, measured after every step by this script for every method.
 *   It is the common currency of all the figures: for `dense`, `ste`, `sr-ste` and `s-ste` it is
 *   the mask the method itself tracks (the trainer's flip rate, one step later), for `t-sr-ste` it
 *   is the mask its weights would have if it were refreshed every step.
 * - **mask-in-use flip rate** — what the trainer reports: the same hard mask for the methods
 *   above, but for `t-sr-ste` the transposable mask, which is recomputed only every
 *   `--maskRefresh` steps, so that number is **per refresh** (flips accumulated over
 *   `maskRefresh` steps) and is not comparable step for step; it is plotted separately.
 *
 * Warm-up α selection (this project's operationalisation of SPEC 2.3; the paper's procedure was
 * not available): during the LR warm-up (`--warmup` steps, from the same init and data order),
 * short T-SR-STE probes run for every α of `--probeAlphas` with **`maskRefresh = 1`**, so the
 * transposable mask's flip rate is a per-step quantity like the bound. The bound is the per-step
 * flip rate of the hard top-2 mask of the dense run over the same steps, times `--healthyFactor`.
 * The probe steps `1..warmup−1` (step 0 is the first mask computation and reports 0) are split
 * into thirds; a probe is healthy when (1) its mean flip rate over the middle and over the last
 * third each stay at or below the bound's mean over the same third, and (2) it does not rise: the
 * last third's mean is at most the middle third's. The smallest healthy α is selected; if none is,
 * the largest α of the grid is selected and the summary says that no probe was healthy. If the
 * selected α is not part of `--alphas`, a full T-SR-STE run with it is added (`--runSelected`).
 *
 * Why the α grids reach beyond P1's values: the decay term enters the gradient before AdamW, so
 * what matters is α·|w| against the per-element gradient that AdamW normalises by. After
 * clipping (a norm of 1 spread over ~0.7M parameters in the `cpu` preset against 124M), the
 * per-element gradient of the `cpu` preset is about √(124/0.7) ≈ 13 times that of GPT-2 124M, and
 * its probes show no measurable effect of α ≤ 2e-4 on the flip rate over the warm-up, a small one
 * at 1e-3; the suppression appears from α ≈ 1e-2 (`results/flip_rate/`).
 * The larger values are kept in every preset so the grids are the same; on a GPU-sized model
 * P1's values are expected to matter.
 *
 * What to expect (SPEC §5): the flip rate explodes or stays high under plain STE; masked decay on
 * the gradient suppresses it, and too large an α drives it to 0 and freezes the mask (the hard
 * flip rate of the dense weights keeps moving, but the transposable mask stops flipping); S-STE's
 * curve is smoother and lower than SR-STE's; the dynamic β makes S-STE's flip rate worse. At this
 * tiny scale the curves are noisy (plots show a moving average over `--smooth` steps).
 *
 * Usage:
 *   deno run -A experiments/flip_rate.ts                       # the `cpu` preset, ~18 minutes
 *   deno run -A experiments/flip_rate.ts --preset=gpu --backend=webgpu
 *   deno run -A experiments/flip_rate.ts --preset=cpu-tiny --backend=reference --out=/tmp/fr
 *
 * Outputs (in `--out`, default `results/flip_rate`): `summary.json`, `table.md`, `flip_rate.svg`
 * (every method; the α sweep has its own charts), `methods.svg`, `alpha_sweep.svg`,
 * `alpha_sweep_mask.svg` (per refresh), `decay_placement.svg`, `beta.svg`, `alpha_probes.svg`,
 * and checkpoints for `--resume`.
 *
 * @module
 */

import type { Backend, Tensor } from "../core/backend.ts";
import type { Batch, GPT, GPTConfig } from "../core/gpt2.ts";
import { resolveSparseOptions, sparseMethodTraits, type SparseOptions } from "../core/sparse.ts";
import { lineChart, type Series } from "./_plot.ts";
import { assertInt, assertNumber, parseConfig, parseList, runCli } from "./_config.ts";
import {
  checkLmConfig,
  DATA_DIR,
  formatSeconds,
  type LmData,
  loadLmData,
  modelConfig,
  type RunLog,
  selectBackend,
  trainRun,
  validationBatches,
} from "./_lm.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "cpu", // cpu | cpu-tiny | gpu
  steps: 200, // optimizer steps of every full run
  seed: 1, // initialisation, data order and MVUE seed (the same for every run)
  backend: "auto", // auto | reference | webgpu
  out: "results/flip_rate",
  resume: false, // continue every run from its checkpoint (a bare --resume means true)
  checkpointEvery: 100, // steps between checkpoints (and one at the end of each run)
  data: DATA_DIR,
  vocab: 2048, // reduced vocabulary (0 = the full 50,257 GPT-2 ids)
  nLayer: 2,
  nHead: 4,
  nEmbd: 128,
  blockSize: 64,
  batchSize: 8,
  lr: 1e-3, // peak learning rate
  warmup: 30, // linear warm-up steps (also the length of the α probes)
  minLr: 1e-4, // cosine floor
  evalBatches: 8, // validation batches for the final loss
  lambdaW: 2e-4, // SR-STE decay of the pruned weights (SPEC 2.2 default)
  alphas: "0,6e-6,6e-5,2e-4,1e-3,1e-2,1e-1", // T-SR-STE α sweep (full runs; see the header)
  alphaMain: 6e-5, // the α of T-SR-STE in the methods figure (P1's GPT-2 124M value)
  maskRefresh: 10, // T-SR-STE transposable-mask refresh period of the full runs
  probeAlphas: "0,6e-6,2e-5,6e-5,2e-4,1e-3,1e-2,3e-2,1e-1", // α grid of the warm-up probes
  healthyFactor: 1, // bound = healthyFactor × the dense run's hard flip rate
  runSelected: true, // add a full T-SR-STE run with the selected α if it is not in --alphas
  smooth: 5, // moving-average window (steps) of the plotted curves
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  // The width of `gpt2.ts`'s cpu preset: 2 layers × 128 wide, context 64, batch 8 (512 tokens a
  // step), the 2,048 most frequent ids. 14 full runs of 200 steps and nine 30-step probes; the time measured on 2 cores
  // through the software WebGPU adapter is in the committed results' table header. A 32-wide model
  // with 512 ids (tried first) finished every variant within a few thousandths of the same loss:
  // below the seed spread, so this preset takes the width of the main job.
  cpu: {},
  // The test suite's smoke run (a few seconds on the reference backend).
  "cpu-tiny": {
    steps: 12,
    vocab: 512,
    nHead: 2,
    nEmbd: 32,
    blockSize: 16,
    lr: 2e-3,
    nLayer: 1,
    batchSize: 4,
    warmup: 6,
    evalBatches: 2,
    maskRefresh: 3,
    alphas: "0,6e-5",
    probeAlphas: "0,2e-4",
    runSelected: false,
    smooth: 2,
  },
  // A GPU-sized model (full vocabulary), the size of `gpt2.ts --preset=gpu`.
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
    evalBatches: 16,
    maskRefresh: 40,
    smooth: 10,
  },
};

// ---- the runs -----------------------------------------------------------------------------------

/** Figure families a run belongs to. */
type Family = "methods" | "alpha" | "decay" | "beta";

interface RunSpec {
  id: string;
  /** A legend label short enough for the charts. */
  short: string;
  families: Family[];
  sparse: SparseOptions;
}

/** `6e-5`-style text of an α. */
function fmtAlpha(alpha: number): string {
  return alpha === 0 ? "0" : alpha.toExponential().replace("e+", "e");
}

function alphaId(alpha: number): string {
  return `t-sr-ste α=${fmtAlpha(alpha)}`;
}

/** A comma-separated α grid: numbers >= 0, ascending, each value once. */
function parseAlphas(name: string, text: string): number[] {
  const values = parseList(name, text, (item) => {
    const v = Number(item);
    if (!Number.isFinite(v) || v < 0) {
      throw new TypeError(
        `Bad value for --${name}: expected a comma-separated list of numbers >= 0, got ${text}`,
      );
    }
    return v;
  });
  return [...new Set(values)].sort((a, b) => a - b);
}

function runSpecs(cfg: Config, alphas: number[]): RunSpec[] {
  const tsr = (alpha: number): RunSpec => ({
    id: alphaId(alpha),
    short: `t-sr-ste α=${fmtAlpha(alpha)}`,
    families: alpha === cfg.alphaMain ? ["alpha", "methods"] : ["alpha"],
    sparse: { method: "t-sr-ste", alpha, maskRefresh: cfg.maskRefresh },
  });
  return [
    { id: "dense", short: "dense", families: ["methods"], sparse: { method: "dense" } },
    { id: "ste", short: "ste", families: ["methods", "decay"], sparse: { method: "ste" } },
    {
      id: "sr-ste (decay on gradient)",
      short: "sr-ste (on grad)",
      families: ["methods", "decay"],
      sparse: { method: "sr-ste", decayOn: "gradient", lambdaW: cfg.lambdaW },
    },
    {
      id: "sr-ste (decay on weight)",
      short: "sr-ste (on weight)",
      families: ["decay"],
      sparse: { method: "sr-ste", decayOn: "weight", lambdaW: cfg.lambdaW },
    },
    ...alphas.map(tsr),
    {
      id: "s-ste (frozen β)",
      short: "s-ste (frozen β)",
      families: ["methods", "beta"],
      sparse: { method: "s-ste", betaRecipe: "mse-frozen" },
    },
    {
      id: "s-ste (dynamic β)",
      short: "s-ste (dynamic β)",
      families: ["beta"],
      sparse: { method: "s-ste", betaRecipe: "mse-dynamic" },
    },
  ];
}

// ---- the per-step hard flip rate ---------------------------------------------------------------

/**
 * Measures, after every optimizer step, the fraction of the hard top-2 mask bits (SPEC 1.1) of all
 * sparse layers' dense weights that changed since the previous measurement (SPEC 2.4: Σ flips /
 * Σ entries). The first measurement only stores the mask and reports `null`.
 */
class HardMaskFlips {
  #previous: Tensor[] | undefined = undefined;

  async measure(model: GPT): Promise<number | null> {
    const be = model.backend;
    const layers = model.sparseLayers();
    const masks = layers.map((layer) => be.pruneNM(layer.weight.value, 2, 4).mask);
    let rate: number | null = null;
    if (this.#previous === undefined) {
      this.#previous = masks.map((m) => be.keep(m));
    } else {
      const previous = this.#previous;
      const counts = await be.readMany(masks.map((m, i) => be.flipCount(previous[i], m)));
      let flips = 0, entries = 0;
      layers.forEach((layer, i) => {
        flips += counts[i][0];
        entries += layer.maskSize;
      });
      rate = flips / entries;
      masks.forEach((m, i) => be.assign(previous[i], m));
    }
    be.release();
    return rate;
  }

  dispose(be: Backend): void {
    for (const t of this.#previous ?? []) be.dispose(t);
    this.#previous = undefined;
  }
}

// ---- statistics ---------------------------------------------------------------------------------

/** `[x, y]` points; x = optimizer steps completed when the mask was compared. */
type Curve = [number, number][];

function mean(values: number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Mean of the points with `lo <= x < hi`. */
function meanIn(curve: Curve, lo: number, hi: number): number | null {
  return mean(curve.filter(([x]) => x >= lo && x < hi).map(([, y]) => y));
}

/**
 * The per-step hard flip rate after step s compares the masks after steps s and s−1, i.e. the
 * flips that step s made; plotted at x = s + 1 (steps completed).
 */
function hardCurve(log: RunLog): Curve {
  return log.steps.filter((s) => typeof s.extra?.hardFlipRate === "number")
    .map((s) => [s.step + 1, s.extra!.hardFlipRate as number]);
}

/**
 * The trainer's flip rate of the mask in use, computed at the start of step s from the weights
 * after s steps (flips since the previous computation); step 0 (a first computation) is left out.
 */
function maskCurve(log: RunLog): Curve {
  return log.steps.filter((s) => s.flipRate !== null && s.step > 0)
    .map((s) => [s.step, s.flipRate!]);
}

function movingAverage(curve: Curve, k: number): Curve {
  return curve.map(([x], i) => {
    const w = curve.slice(Math.max(0, i - k + 1), i + 1);
    return [x, w.reduce((a, [, y]) => a + y, 0) / w.length];
  });
}

interface CurveStats {
  first_third: number | null;
  last_third: number | null;
  max: number | null;
  final: number | null;
  points: number;
}

function curveStats(curve: Curve, steps: number): CurveStats {
  return {
    first_third: meanIn(curve, 0, steps / 3),
    last_third: meanIn(curve, (2 * steps) / 3, Infinity),
    max: curve.length ? Math.max(...curve.map(([, y]) => y)) : null,
    final: curve.at(-1)?.[1] ?? null,
    points: curve.length,
  };
}

// ---- α selection --------------------------------------------------------------------------------

interface ProbeResult {
  alpha: number;
  /** Mean per-step transposable-mask flip rate over each third of the warm-up. */
  thirds: (number | null)[];
  /** Mean per-step hard flip rate of the dense weights over each third (for reference). */
  hard_thirds: (number | null)[];
  below_bound: boolean;
  not_rising: boolean;
  healthy: boolean;
  curve: Curve;
}

/** The warm-up thirds over steps `1..warmup−1` as `[lo, hi)` ranges of x. */
function warmupThirds(warmup: number): [number, number][] {
  const span = warmup - 1;
  return [0, 1, 2].map((k) => [1 + (k * span) / 3, 1 + ((k + 1) * span) / 3]);
}

function judgeProbe(
  alpha: number,
  curve: Curve,
  hard: Curve,
  bound: (number | null)[],
  warmup: number,
): ProbeResult {
  const thirds = warmupThirds(warmup).map(([lo, hi]) => meanIn(curve, lo, hi));
  const hardThirds = warmupThirds(warmup).map(([lo, hi]) => meanIn(hard, lo, hi));
  const below = [1, 2].every((k) =>
    thirds[k] !== null && bound[k] !== null && thirds[k]! <= bound[k]!
  );
  const notRising = thirds[1] !== null && thirds[2] !== null && thirds[2]! <= thirds[1]!;
  return {
    alpha,
    thirds,
    hard_thirds: hardThirds,
    below_bound: below,
    not_rising: notRising,
    healthy: below && notRising,
    curve,
  };
}

/**
 * Picks the smallest healthy α of the probes (the largest α of the grid when none is healthy) and
 * says why.
 */
function selectAlpha(
  probes: ProbeResult[],
  bound: (number | null)[],
  healthyFactor: number,
): { selected: number; healthy: boolean; reason: string } {
  const f = (v: number | null) => v === null ? "–" : v.toExponential(2);
  const grid = `{${probes.map((p) => fmtAlpha(p.alpha)).join(", ")}}`;
  const chosen = probes.find((p) => p.healthy);
  if (chosen === undefined) {
    const largest = probes.at(-1)!.alpha;
    return {
      selected: largest,
      healthy: false,
      reason: `no α of ${grid} kept the flip rate at or below the bound without rising; the ` +
        `largest, α=${fmtAlpha(largest)}, is used`,
    };
  }
  const failed = probes.filter((p) => p.alpha < chosen.alpha).map((p) =>
    `α=${fmtAlpha(p.alpha)} ${
      [p.below_bound ? "" : "above the bound", p.not_rising ? "" : "rising"]
        .filter(Boolean).join(" and ")
    }`
  );
  return {
    selected: chosen.alpha,
    healthy: true,
    reason: `α=${fmtAlpha(chosen.alpha)} is the smallest α of ${grid} whose per-step ` +
      `transposable-mask flip rate over the middle and last thirds of the warm-up ` +
      `(${f(chosen.thirds[1])}, ${f(chosen.thirds[2])}) stays at or below the bound ` +
      `(${healthyFactor} × the dense run's hard flip rate: ${f(bound[1])}, ${f(bound[2])}) and ` +
      `does not rise${failed.length > 0 ? `; smaller α failed: ${failed.join("; ")}` : ""}`,
  };
}

// ---- main ---------------------------------------------------------------------------------------

interface RunResult {
  id: string;
  short: string;
  families: Family[];
  sparse: SparseOptions;
  val_loss: number;
  evaluated: "dense" | "2:4";
  hard_flip_rate: CurveStats;
  mask_flip_rate: CurveStats & { per: "step" | "refresh" };
  tokens_per_s: number;
  train_seconds: number;
  log: RunLog;
}

/**
 * Runs the flip-rate experiment with `--key=value` arguments and writes its outputs.
 *
 * @param args Command-line arguments (`--preset=`, `--steps=`, `--out=`, …).
 * @returns The summary written to `summary.json`.
 * @throws {TypeError} On an unknown option or a value that does not parse.
 * @throws {RangeError} On a value out of range.
 */
export async function main(args: string[]): Promise<Record<string, unknown>> {
  // Every flag is validated before any work.
  const cfg = parseConfig(defaults, args, presets);
  assertInt("steps", cfg.steps, 2);
  assertInt("warmup", cfg.warmup, 4, cfg.steps - 1);
  assertInt("maskRefresh", cfg.maskRefresh, 1);
  assertInt("smooth", cfg.smooth, 1);
  assertNumber("healthyFactor", cfg.healthyFactor, 0, { exclusiveMin: true });
  const alphas = parseAlphas("alphas", cfg.alphas);
  const probeAlphas = parseAlphas("probeAlphas", cfg.probeAlphas);
  const probe = (alpha: number): SparseOptions => ({ method: "t-sr-ste", alpha, maskRefresh: 1 });
  checkLmConfig(cfg, [...runSpecs(cfg, alphas).map((r) => r.sparse), ...probeAlphas.map(probe)]);
  await Deno.mkdir(`${cfg.out}/checkpoints`, { recursive: true });
  console.log("config:", JSON.stringify(cfg));
  const started = performance.now();
  const backend = await selectBackend(cfg.backend);
  console.log(`backend: ${backend.name} on ${backend.device}`);
  const data = await loadLmData(cfg.data, cfg.vocab);
  const valBatches = validationBatches(data, cfg.batchSize, cfg.blockSize, cfg.evalBatches);

  const train = (spec: RunSpec, label: string, options: { stopAt?: number; ckpt: boolean }) =>
    trainOne(cfg, backend, data, valBatches, spec, label, options);

  const specs = runSpecs(cfg, alphas);
  const results: RunResult[] = [];
  // Progress in units of one full run (a probe counts warmup/steps of one).
  const work = specs.length + (probeAlphas.length * cfg.warmup) / cfg.steps;
  let completed = 0;
  const announce = (what: string, weight = 1) => {
    const elapsed = (performance.now() - started) / 1000;
    const left = completed > 0
      ? `, about ${formatSeconds((elapsed / completed) * (work - completed))} left`
      : "";
    console.log(`\n== ${what}  (${formatSeconds(elapsed)} elapsed${left})`);
    completed += weight;
  };

  // Dense first: it is the bound of the α selection.
  announce(`[1/${specs.length}] ${specs[0].id}`);
  results.push(await train(specs[0], specs[0].id, { ckpt: true }));

  // Warm-up α selection (SPEC 2.3, this project's operationalisation; see the module header).
  const bound = warmupThirds(cfg.warmup).map(([lo, hi]) => {
    const m = meanIn(maskCurve(results[0].log), lo, hi);
    return m === null ? null : m * cfg.healthyFactor;
  });
  const probes: ProbeResult[] = [];
  for (const alpha of probeAlphas) {
    announce(
      `probe α=${fmtAlpha(alpha)} over the ${cfg.warmup}-step warm-up (maskRefresh 1)`,
      cfg.warmup / cfg.steps,
    );
    const spec: RunSpec = {
      id: `probe α=${fmtAlpha(alpha)}`,
      short: `α=${fmtAlpha(alpha)}`,
      families: [],
      sparse: probe(alpha),
    };
    const r = await train(spec, spec.id, { stopAt: cfg.warmup, ckpt: false });
    probes.push(judgeProbe(alpha, maskCurve(r.log), hardCurve(r.log), bound, cfg.warmup));
  }
  const { selected, healthy, reason } = selectAlpha(probes, bound, cfg.healthyFactor);
  console.log(`\nα selection: ${reason}`);

  const runs = specs.slice(1);
  if (cfg.runSelected && !alphas.includes(selected)) {
    runs.push({
      id: `${alphaId(selected)} (selected)`,
      short: `α=${fmtAlpha(selected)} (selected)`,
      families: ["alpha"],
      sparse: { method: "t-sr-ste", alpha: selected, maskRefresh: cfg.maskRefresh },
    });
  }
  for (const [i, spec] of runs.entries()) {
    announce(`[${i + 2}/${runs.length + 1}] ${spec.id}`);
    results.push(await train(spec, spec.id, { ckpt: true }));
  }

  const summary = await writeOutputs(
    cfg,
    results,
    probes,
    {
      grid: probeAlphas,
      bound,
      selected,
      healthy,
      reason,
    },
    backend,
    started,
  );
  console.log(`\nfinished in ${formatSeconds((performance.now() - started) / 1000)}`);
  return summary;
}

async function trainOne(
  cfg: Config,
  backend: Backend,
  data: LmData,
  valBatches: Batch[],
  spec: RunSpec,
  label: string,
  options: { stopAt?: number; ckpt: boolean },
): Promise<RunResult> {
  const model: GPTConfig = modelConfig(cfg, data.vocab.size, spec.sparse);
  const hard = new HardMaskFlips();
  const fileName = spec.id.replace(/[^a-z0-9+-]+/gi, "_");
  const traits = sparseMethodTraits(spec.sparse.method);
  const dense = traits.weight === "dense";
  const { trainer, log } = await trainRun({
    label,
    backend,
    model,
    initSeed: cfg.seed,
    trainer: {
      totalSteps: cfg.steps,
      peakLr: cfg.lr,
      warmupSteps: cfg.warmup,
      minLr: cfg.minLr,
      seed: cfg.seed,
    },
    tokens: data.train,
    batchSize: cfg.batchSize,
    blockSize: cfg.blockSize,
    dataSeed: cfg.seed,
    val: { batches: valBatches, every: 0, dense: () => dense },
    checkpoint: options.ckpt ? `${cfg.out}/checkpoints/${fileName}.safetensors` : undefined,
    checkpointEvery: cfg.checkpointEvery,
    resume: cfg.resume,
    stopAt: options.stopAt,
    logEvery: options.stopAt !== undefined ? options.stopAt : 25,
    onStep: async (t) => ({ hardFlipRate: await hard.measure(t.model) }),
  });
  hard.dispose(backend);
  // A mask refreshed every step has a per-step flip rate whatever the method's unit.
  const refresh = traits.flipRateUnit === "refresh" &&
    resolveSparseOptions(spec.sparse).maskRefresh > 1;
  return {
    id: spec.id,
    short: spec.short,
    families: spec.families,
    sparse: spec.sparse,
    val_loss: log.val.at(-1)?.[1] ?? NaN,
    evaluated: dense ? "dense" : "2:4",
    hard_flip_rate: curveStats(hardCurve(log), trainer.step),
    mask_flip_rate: {
      ...curveStats(maskCurve(log), trainer.step),
      per: refresh ? "refresh" : "step",
    },
    tokens_per_s: log.tokens / log.trainSeconds,
    train_seconds: log.trainSeconds,
    log,
  };
}

// ---- outputs ------------------------------------------------------------------------------------

interface Selection {
  grid: number[];
  bound: (number | null)[];
  selected: number;
  healthy: boolean;
  reason: string;
}

async function writeOutputs(
  cfg: Config,
  results: RunResult[],
  probes: ProbeResult[],
  selection: Selection,
  backend: Backend,
  started: number,
): Promise<Record<string, unknown>> {
  const date = new Date().toISOString();
  const summary = {
    experiment: "flip_rate",
    date,
    backend: backend.name,
    device: backend.device,
    wall_seconds: (performance.now() - started) / 1000,
    config: cfg,
    alpha_selection: {
      procedure: "T-SR-STE probes over the LR warm-up with maskRefresh=1; healthy = mean " +
        "per-step transposable-mask flip rate over the middle and last thirds of steps " +
        "1..warmup-1 at or below healthyFactor × the dense run's hard top-2 flip rate over the " +
        "same thirds, and the last third's mean at most the middle third's; the smallest " +
        "healthy α is selected (the largest α of the grid if none is healthy)",
      grid: selection.grid,
      bound_thirds: selection.bound,
      selected: selection.selected,
      any_healthy: selection.healthy,
      reason: selection.reason,
      probes: probes.map((p) => ({
        alpha: p.alpha,
        flip_rate_thirds: p.thirds,
        hard_flip_rate_thirds: p.hard_thirds,
        below_bound: p.below_bound,
        not_rising: p.not_rising,
        healthy: p.healthy,
        curve: p.curve,
      })),
    },
    runs: Object.fromEntries(results.map((r) => [r.id, {
      sparse: r.sparse,
      val_loss: r.val_loss,
      evaluated: r.evaluated,
      hard_flip_rate: r.hard_flip_rate,
      mask_flip_rate: r.mask_flip_rate,
      tokens_per_s: r.tokens_per_s,
      train_seconds: r.train_seconds,
      hard_curve: hardCurve(r.log),
      mask_curve: maskCurve(r.log),
    }])),
  };
  await Deno.writeTextFile(`${cfg.out}/summary.json`, JSON.stringify(summary, null, 1) + "\n");

  const f = (v: number | null) => v === null ? "–" : v.toExponential(2);
  const denseLoss = results.find((r) => r.id === "dense")?.val_loss;
  const lines = [
    `# Flip rate of 2:4 training methods (P1 flip-rate figure, P2 Fig. 4; scaled down)`,
    ``,
    `Produced by \`experiments/flip_rate.ts\` (preset \`${cfg.preset}\`, ${cfg.steps} steps, ` +
    `${cfg.nLayer} layers × ${cfg.nEmbd} wide, ${cfg.nHead} heads, context ${cfg.blockSize}, ` +
    `batch ${cfg.batchSize}, vocabulary ${cfg.vocab || 50257}, peak LR ${cfg.lr}, warm-up ` +
    `${cfg.warmup}, T-SR-STE mask refresh every ${cfg.maskRefresh} steps) on ${backend.name} ` +
    `(${backend.device}), ${date.slice(0, 10)}. Same initial weights and data order in every run.`,
    ``,
    `*Hard flip rate*: fraction of the hard top-2 mask bits of the dense weights (all FFN linears) ` +
    `changed by one optimizer step, measured every step for every method. *Mask-in-use flip ` +
    `rate*: the trainer's flip rate of the mask the method trains with; for T-SR-STE that is the ` +
    `transposable mask and the number is per refresh (${cfg.maskRefresh} steps), not per step. ` +
    `Thirds are of the ${cfg.steps} steps. The charts are log-scale and draw a flip rate of 0 ` +
    `at half a flip (${(0.5 / maskEntries(cfg)).toExponential(1)}).`,
    ``,
    `| run | hard flip, first third | hard flip, last third | hard flip, max | mask-in-use flip, first third | mask-in-use flip, last third | val loss | Δ vs dense | evaluated |`,
    `|---|---|---|---|---|---|---|---|---|`,
    ...results.map((r) =>
      `| ${r.id} | ${f(r.hard_flip_rate.first_third)} | ${f(r.hard_flip_rate.last_third)} | ${
        f(r.hard_flip_rate.max)
      } | ${f(r.mask_flip_rate.first_third)} | ${f(r.mask_flip_rate.last_third)}${
        r.mask_flip_rate.per === "refresh" ? " /refresh" : ""
      } | ${r.val_loss.toFixed(4)} | ${
        denseLoss === undefined ? "–" : (r.val_loss - denseLoss).toFixed(4)
      } | ${r.evaluated} |`
    ),
    ``,
    `## Warm-up α selection (SPEC 2.3, this project's operationalisation)`,
    ``,
    `T-SR-STE probes over the ${cfg.warmup}-step LR warm-up with the transposable mask refreshed ` +
    `every step (so its flip rate is per step). Bound: ${cfg.healthyFactor} × the dense run's ` +
    `hard flip rate over the same steps. Healthy: the mean over the middle and last thirds of ` +
    `the warm-up at or below the bound, and the last third not above the middle third.`,
    ``,
    `| α | first third | middle third | last third | below bound | not rising | healthy |`,
    `|---|---|---|---|---|---|---|`,
    `| bound (dense) | ${f(selection.bound[0])} | ${f(selection.bound[1])} | ${
      f(selection.bound[2])
    } | | | |`,
    ...probes.map((p) =>
      `| ${fmtAlpha(p.alpha)} | ${f(p.thirds[0])} | ${f(p.thirds[1])} | ${f(p.thirds[2])} | ${
        p.below_bound ? "yes" : "no"
      } | ${p.not_rising ? "yes" : "no"} | ${p.healthy ? "**yes**" : "no"} |`
    ),
    ``,
    `Selected: **α = ${fmtAlpha(selection.selected)}**. ${selection.reason}.`,
    ``,
  ];
  await Deno.writeTextFile(`${cfg.out}/table.md`, lines.join("\n"));

  // Log-scale charts cannot show 0: a zero (frozen mask) is drawn at half a flip (said in
  // table.md).
  const floor = 0.5 / maskEntries(cfg);
  const plot = (curve: Curve) =>
    movingAverage(curve, cfg.smooth).map(([x, y]) => [x, Math.max(y, floor)] as [number, number]);
  const chart = (file: string, title: string, series: Series[], perRefresh = false) =>
    Deno.writeTextFile(
      `${cfg.out}/${file}`,
      lineChart(series, {
        title,
        xLabel: "optimizer steps",
        yLabel: perRefresh ? "flip rate per refresh" : `flip rate (${cfg.smooth}-step mean)`,
        logY: true,
      }),
    );
  const hardSeries = (rs: RunResult[], name = (r: RunResult) => r.short) =>
    rs.map((r) => ({ name: name(r), points: plot(hardCurve(r.log)) }));
  const alphaName = (r: RunResult) => r.id === "dense" ? "dense" : r.short.replace("t-sr-ste ", "");
  const family = (name: Family) => results.filter((r) => r.families.includes(name));
  await chart(
    "flip_rate.svg",
    "Hard flip rate per step (the α sweep is in alpha_sweep.svg)",
    hardSeries(results.filter((r) => r.families.some((f) => f !== "alpha"))),
  );
  await chart("methods.svg", "Hard flip rate per step by method", hardSeries(family("methods")));
  await chart(
    "alpha_sweep.svg",
    "T-SR-STE α sweep: hard flip rate per step",
    hardSeries([...results.filter((r) => r.id === "dense"), ...family("alpha")], alphaName),
  );
  await chart(
    "alpha_sweep_mask.svg",
    `T-SR-STE α sweep: transposable-mask flips per ${cfg.maskRefresh}-step refresh`,
    family("alpha").map((r) => ({
      name: alphaName(r),
      points: maskCurve(r.log).map(([x, y]) => [x, Math.max(y, floor)] as [number, number]),
    })),
    true,
  );
  await chart(
    "decay_placement.svg",
    "SR-STE decay on gradient vs on weight",
    hardSeries(family("decay")),
  );
  await chart("beta.svg", "S-STE frozen vs dynamic β", hardSeries(family("beta")));
  await chart("alpha_probes.svg", "Warm-up α probes (mask refreshed every step), dense bound", [
    {
      name: "dense (bound)",
      points: plot(maskCurve(results[0].log).filter(([x]) => x < cfg.warmup)),
    },
    ...probes.map((p) => ({ name: `α=${fmtAlpha(p.alpha)}`, points: plot(p.curve) })),
  ]);
  console.log(`\n${lines.join("\n")}`);
  console.log(
    `wrote ${cfg.out}/{summary.json,table.md,flip_rate.svg,methods.svg,alpha_sweep.svg,` +
      `alpha_sweep_mask.svg,decay_placement.svg,beta.svg,alpha_probes.svg}`,
  );
  return summary;
}

/** Mask entries over all sparse layers (the FFN's `c_fc` and `c_proj`: 2 · 4d² per block). */
function maskEntries(cfg: Config): number {
  return cfg.nLayer * 2 * 4 * cfg.nEmbd * cfg.nEmbd;
}

if (import.meta.main) await runCli(main);
