/**
 * Flip-rate curves — the scaled-down reproduction of P1's flip-rate figure (STE, SR-STE and masked
 * decay with several factors α during GPT-2 pre-training) and P2 Fig. 4 (S-STE against SR-STE,
 * frozen against dynamic β).
 *
 * Trains the same GPT-2 (same initial weights, data order and schedule) on the Brown corpus with
 * `dense`, `ste`, `sr-ste` (decay on the gradient and on the weight, SPEC 2.2), `t-sr-ste` for every
 * α of `--alphas` (SPEC 2.3) and `s-ste` with the frozen and the dynamic β (SPEC 1.3), recording two
 * flip rates per run (SPEC 2.4; see `_flip_rate_measures.ts`). The α the main runs use is selected by
 * `alpha_select.ts` (SPEC 2.3).
 *
 * What to expect (SPEC §5): the flip rate explodes or stays high under plain STE; masked decay on
 * the gradient suppresses it, and too large an α drives it to 0 and freezes the mask; S-STE's
 * curve is smoother and lower than SR-STE's; the dynamic β makes S-STE's flip rate worse. At this
 * tiny scale the curves are noisy (plots show a moving average over `--smooth` steps).
 *
 * Usage:
 *   deno task flip_rate                                        # the `cpu` preset, ~18 minutes
 *   deno task flip_rate --preset=gpu --backend=webgpu
 *   deno task flip_rate --preset=cpu-tiny --backend=reference --out=/tmp/fr
 *
 * Outputs (in `--out`, default `results/flip_rate`): `summary.json`, `table.md`, `flip_rate.svg`,
 * `methods.svg`, `alpha_sweep.svg`, `alpha_sweep_mask.svg` (per refresh), `decay_placement.svg`,
 * `beta.svg`, and checkpoints for `--resume`.
 *
 * @module
 */

import { resolveSparseOptions, sparseMethodTraits, type SparseOptions } from "../core/sparse.ts";
import { writeSummary } from "./_summary.ts";
import { lineChart, type Series } from "./_plot.ts";
import {
  type Curve,
  type CurveStats,
  curveStats,
  fmtAlpha,
  hardCurve,
  maskCurve,
  MaskFlips,
  movingAverage,
} from "./_flip_rate_measures.ts";
import { assertInt, parseConfig, parseList, runCli } from "./_config.ts";
import { LM_GPU, LM_GPU_SCHEDULE, LM_RUN, STUDY_CPU, STUDY_TINY } from "./_lm_presets.ts";
import { checkLmConfig } from "./lm.ts";
import { LmExperiment, producedBy, type RunTotals, runTotals } from "./_lm_experiment.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "cpu", // cpu | cpu-tiny | gpu
  ...STUDY_CPU, // the run of the studies: 2 layers × 128, 2,048 ids, batch 8, 200 steps
  ...LM_RUN, // one seed for every run
  out: "results/flip_rate",
  lambdaW: 2e-4, // SR-STE decay of the pruned weights (SPEC 2.2 default)
  // T-SR-STE α sweep (full runs): P1's values plus 1e-2 and 1e-1. The decay enters the gradient
  // before AdamW, so what matters is α·|w| against the per-element gradient AdamW normalises by;
  // after clipping (a norm of 1 over ~0.7M parameters in the `cpu` preset against 124M) that
  // gradient is about √(124/0.7) ≈ 13 times GPT-2 124M's, and the `cpu` probes show no measurable
  // effect of α ≤ 2e-4 over the warm-up, a small one at 1e-3, suppression from α ≈ 1e-2
  // (`results/flip_rate/`). Every preset keeps the same grids; at GPU size P1's values should matter.
  alphas: "0,6e-6,6e-5,2e-4,1e-3,1e-2,1e-1",
  alphaMain: 6e-5, // the α of T-SR-STE in the methods figure (P1's GPT-2 124M value)
  maskRefresh: 10, // T-SR-STE transposable-mask refresh period of the full runs
  smooth: 5, // moving-average window (steps) of the plotted curves
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  cpu: {}, // 13 full runs of 200 steps (the time measured is in the committed table's header)
  "cpu-tiny": { ...STUDY_TINY, steps: 12, warmup: 6, maskRefresh: 3, alphas: "0,6e-5", smooth: 2 },
  gpu: { ...LM_GPU, ...LM_GPU_SCHEDULE, evalBatches: 16, maskRefresh: 40, smooth: 10 },
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

// ---- main ---------------------------------------------------------------------------------------

interface RunResult extends RunTotals {
  id: string;
  short: string;
  families: Family[];
  sparse: SparseOptions;
  val_loss: number;
  evaluated: "dense" | "2:4";
  hard_flip_rate: CurveStats;
  mask_flip_rate: CurveStats & { per: "step" | "refresh" };
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
  const alphas = parseAlphas("alphas", cfg.alphas);
  checkLmConfig(cfg, runSpecs(cfg, alphas).map((r) => r.sparse));
  const experiment = await LmExperiment.open(cfg);

  const specs = runSpecs(cfg, alphas);
  const results: RunResult[] = [];
  for (const [i, spec] of specs.entries()) {
    experiment.announce({ done: i, total: specs.length, label: spec.id });
    results.push(await trainOne(cfg, experiment, spec));
  }

  const summary = await writeOutputs(cfg, results, experiment);
  experiment.finish();
  return summary;
}

async function trainOne(cfg: Config, experiment: LmExperiment, spec: RunSpec): Promise<RunResult> {
  const hard = new MaskFlips("hard");
  const fileName = spec.id.replace(/[^a-z0-9+-]+/gi, "_");
  const traits = sparseMethodTraits(spec.sparse.method);
  const dense = traits.weight === "dense";
  const { trainer, log } = await experiment.train(cfg, {
    label: spec.id,
    sparse: spec.sparse,
    seed: cfg.seed,
    val: { batches: experiment.valBatches, every: 0, dense: () => dense },
    checkpoint: `${cfg.out}/checkpoints/${fileName}.safetensors`,
    checkpointEvery: cfg.checkpointEvery,
    resume: cfg.resume,
    logEvery: 25,
    onStep: async (t) => ({ hardFlipRate: await hard.measure(t.model) }),
  });
  hard.dispose(experiment.backend);
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
    ...runTotals(log),
  };
}

// ---- outputs ------------------------------------------------------------------------------------

async function writeOutputs(
  cfg: Config,
  results: RunResult[],
  experiment: LmExperiment,
): Promise<Record<string, unknown>> {
  const summary = {
    ...experiment.summaryHeader("flip_rate", cfg),
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
  await writeSummary(cfg.out, summary);

  const f = (v: number | null) => v === null ? "–" : v.toExponential(2);
  const denseLoss = results.find((r) => r.id === "dense")?.val_loss;
  const lines = [
    `# Flip rate of 2:4 training methods (P1 flip-rate figure, P2 Fig. 4; scaled down)`,
    ``,
    producedBy(cfg, {
      script: "flip_rate.ts",
      header: summary,
      details: `peak LR ${cfg.lr}, warm-up ${cfg.warmup}, T-SR-STE mask refresh every ` +
        `${cfg.maskRefresh} steps`,
    }) + `. Same initial weights and data order in every run.`,
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
  console.log(`\n${lines.join("\n")}`);
  console.log(
    `wrote ${cfg.out}/{summary.json,table.md,flip_rate.svg,methods.svg,alpha_sweep.svg,` +
      `alpha_sweep_mask.svg,decay_placement.svg,beta.svg}`,
  );
  return summary;
}

/** Mask entries over all sparse layers (the FFN's `c_fc` and `c_proj`: 2 · 4d² per block). */
function maskEntries(cfg: Config): number {
  return cfg.nLayer * 2 * 4 * cfg.nEmbd * cfg.nEmbd;
}

if (import.meta.main) await runCli(main);
