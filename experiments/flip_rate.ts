/**
 * Flip-rate curves — the scaled-down reproduction of P1's flip-rate figure (STE, SR-STE and masked
 * decay with several factors α during GPT-2 pre-training) and P2 Fig. 4 (S-STE against SR-STE,
 * frozen against dynamic β).
 *
 * Trains the same GPT-2 (same schedule) on the Brown corpus with `dense`, `ste`, `sr-ste` (decay on
 * the gradient and on the weight, SPEC 2.2), `t-sr-ste` for every α of `--alphas` (SPEC 2.3) and
 * `s-ste` with the frozen and the dynamic β (SPEC 1.3), each with `--seeds` seeds (seed, seed+1, …:
 * the initialisation, data order and MVUE draws; runs of one seed differ only in their method),
 * recording two flip rates per run (SPEC 2.4; see `_flip_rate_measures.ts`). Each paper claim is a
 * direction of a paired (by seed) difference of flip rates, judged from its 95% t interval
 * (`_stats.ts`: agrees / disagrees / inconclusive). Selecting the α the main runs use is
 * `alpha_select.ts`'s job (SPEC 2.3); the α sweep here shows what α does to the flip rate.
 *
 * What to expect (SPEC §5): the flip rate explodes or stays high under plain STE; masked decay on
 * the gradient suppresses it, and too large an α drives it to 0 and freezes the mask; decay on the
 * weight acts less than decay on the gradient; S-STE's flip rate is lower than SR-STE's; the
 * dynamic β makes S-STE's flip rate worse. The plots show the mean over seeds, smoothed over
 * `--smooth` steps.
 *
 * Usage:
 *   deno task flip_rate                                        # the `cpu` preset, 3 seeds
 *   deno task flip_rate --preset=gpu --backend=webgpu
 *   deno task flip_rate --preset=cpu-tiny --backend=reference --out=/tmp/fr
 *
 * Outputs (in `--out`, default `results/flip_rate`), rewritten after every finished seed so a run
 * cut short keeps its finished seeds: `summary.json`, `table.md`, `flip_rate.svg`, `methods.svg`,
 * `alpha_sweep.svg`, `alpha_sweep_mask.svg` (per refresh), `decay_placement.svg`, `beta.svg`, and
 * checkpoints for `--resume` (in `--checkpoints`, default `<out>/checkpoints`).
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
  meanCurve,
  movingAverage,
} from "./_flip_rate_measures.ts";
import * as stats from "./_stats.ts";
import { assertInt, parseConfig, parseList, runCli } from "./_config.ts";
import { STUDY, STUDY_GPU, STUDY_TINY } from "./_lm_presets.ts";
import { checkLmConfig } from "./lm.ts";
import { LmExperiment, producedBy, type RunTotals, runTotals } from "./_lm_experiment.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  ...STUDY, // the `cpu` preset's run (2 layers × 128, 2,048 ids, batch 8, 200 steps), 3 seeds
  out: "results/flip_rate",
  lambdaW: 2e-4, // SR-STE decay of the pruned weights (SPEC 2.2 default)
  // T-SR-STE α sweep: 0, P1's 6e-5, and 1e-3 (what alpha_select.ts selects for gpt2.ts's model) to
  // 1e-1. The decay enters the gradient before AdamW, so what matters is α·|w| against the
  // per-element gradient AdamW normalises by; after clipping (a norm of 1 over ~0.7M parameters in
  // the `cpu` preset against 124M) that gradient is about √(124/0.7) ≈ 13 times GPT-2 124M's. The
  // one-seed sweep before this one showed 6e-6 and 2e-4 indistinguishable from 0 and 6e-5, so they
  // left the grid (two runs per seed fewer).
  alphas: "0,6e-5,1e-3,1e-2,1e-1",
  alphaMain: 6e-5, // the α of T-SR-STE in the methods figure (P1's GPT-2 124M value)
  maskRefresh: 10, // T-SR-STE transposable-mask refresh period of the full runs
  smooth: 5, // moving-average window (steps) of the plotted curves
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  cpu: {}, // 11 runs × 3 seeds of 200 steps (the time measured is in the table's header)
  "cpu-tiny": {
    ...STUDY_TINY,
    steps: 12,
    warmup: 6,
    maskRefresh: 3,
    alphas: "0,6e-5",
    smooth: 2,
    seeds: 2,
  },
  gpu: { ...STUDY_GPU, maskRefresh: 40, smooth: 10 },
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
  seed: number;
  val_loss: number;
  evaluated: "dense" | "2:4";
  hard_flip_rate: CurveStats;
  mask_flip_rate: CurveStats & { per: "step" | "refresh" };
}

/**
 * Runs the flip-rate experiment with `--key=value` arguments and writes its outputs.
 *
 * @param args Command-line arguments (`--preset=`, `--steps=`, `--seeds=`, `--out=`, …).
 * @returns The summary written to `summary.json`.
 * @throws {TypeError} On an unknown option or a value that does not parse.
 * @throws {RangeError} On a value out of range.
 */
export async function main(args: string[]): Promise<Record<string, unknown>> {
  // Every flag is validated before any work.
  const cfg = parseConfig(defaults, args, presets);
  assertInt("steps", cfg.steps, 2);
  assertInt("seeds", cfg.seeds, 1, 30);
  assertInt("maskRefresh", cfg.maskRefresh, 1);
  assertInt("smooth", cfg.smooth, 1);
  const alphas = parseAlphas("alphas", cfg.alphas);
  const specs = runSpecs(cfg, alphas);
  checkLmConfig(cfg, specs.map((r) => r.sparse));
  const experiment = await LmExperiment.open(cfg, { checkpoints: false });
  const checkpoints = cfg.checkpoints || `${cfg.out}/checkpoints`;
  await Deno.mkdir(checkpoints, { recursive: true });
  const seeds = Array.from({ length: cfg.seeds }, (_, k) => cfg.seed + k);
  console.log(`${specs.length} runs × ${seeds.length} seeds, ${cfg.steps} steps each`);

  const results: RunResult[] = [];
  let summary: Record<string, unknown> = {};
  // Seed by seed: the outputs are rewritten after every seed, so a run cut short keeps them.
  for (const [k, seed] of seeds.entries()) {
    for (const [i, spec] of specs.entries()) {
      const done = k * specs.length + i;
      experiment.announce({
        done,
        total: seeds.length * specs.length,
        label: `${spec.id} #${seed}`,
      });
      results.push(await trainOne(cfg, experiment, spec, { seed, checkpoints }));
    }
    summary = await writeOutputs(cfg, specs, results, experiment);
  }
  experiment.finish();
  return summary;
}

async function trainOne(
  cfg: Config,
  experiment: LmExperiment,
  spec: RunSpec,
  run: { seed: number; checkpoints: string },
): Promise<RunResult> {
  const hard = new MaskFlips("hard");
  const fileName = `${spec.id.replace(/[^a-z0-9+-]+/gi, "_")}_s${run.seed}`;
  const traits = sparseMethodTraits(spec.sparse.method);
  const dense = traits.weight === "dense";
  const { trainer, log } = await experiment.train(cfg, {
    label: `${spec.id} #${run.seed}`,
    sparse: spec.sparse,
    seed: run.seed,
    val: { batches: experiment.valBatches, every: 0, dense: () => dense },
    checkpoint: `${run.checkpoints}/${fileName}.safetensors`,
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
    seed: run.seed,
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

// ---- claims -------------------------------------------------------------------------------------

/** A run's number a claim compares (null where the run has no such measurement). */
type RunMetric = (r: RunResult) => number | null;

const hardLast: RunMetric = (r) => r.hard_flip_rate.last_third;
const maskLast: RunMetric = (r) => r.mask_flip_rate.last_third;
/** How much the hard flip rate rose: last third / first third. */
const hardRise: RunMetric = ({ hard_flip_rate: { first_third, last_third } }) =>
  first_third && last_third !== null ? last_third / first_third : null;

/** A paper's claim: `metric(a) − metric(b)`, paired by seed, meets `test`. */
interface ClaimSpec {
  claim: string;
  source: string;
  a: string;
  b: string;
  metric: RunMetric;
  metricName: string;
  test: stats.Claim;
}

function claimSpecs(alphas: number[]): ClaimSpec[] {
  const hard = "hard flip, last third";
  return [
    {
      claim: "STE's flip rate stays high: above dense's",
      source: "P1 flip-rate figure",
      a: "ste",
      b: "dense",
      metric: hardLast,
      metricName: hard,
      test: { kind: "above" },
    },
    {
      claim: "STE's flip rate rises (last/first third) more than dense's",
      source: "P1 flip-rate figure",
      a: "ste",
      b: "dense",
      metric: hardRise,
      metricName: "hard flip, last third / first third",
      test: { kind: "above" },
    },
    ...(alphas.includes(0) ? alphas.filter((a) => a > 0) : []).map((alpha): ClaimSpec => ({
      claim: `masked decay α = ${fmtAlpha(alpha)} lowers the transposable mask's flip rate`,
      source: "P1 (SPEC 2.3)",
      a: alphaId(alpha),
      b: alphaId(0),
      metric: maskLast,
      metricName: "transposable flips per refresh, last third",
      test: { kind: "below" },
    })),
    {
      claim: "SR-STE's decay on the gradient lowers the flip rate more than on the weight",
      source: "P1",
      a: "sr-ste (decay on gradient)",
      b: "sr-ste (decay on weight)",
      metric: hardLast,
      metricName: hard,
      test: { kind: "below" },
    },
    {
      claim: "S-STE's flip rate is lower than SR-STE's",
      source: "P2 Fig. 4",
      a: "s-ste (frozen β)",
      b: "sr-ste (decay on gradient)",
      metric: hardLast,
      metricName: hard,
      test: { kind: "below" },
    },
    {
      claim: "a dynamic β raises S-STE's flip rate",
      source: "P2 Fig. 4",
      a: "s-ste (dynamic β)",
      b: "s-ste (frozen β)",
      metric: hardLast,
      metricName: hard,
      test: { kind: "above" },
    },
  ];
}

/** A metric of one run id by seed; null if a run lacks it (a claim on it is not judged). */
function seededValues(
  results: RunResult[],
  id: string,
  metric: RunMetric,
): stats.SeededValue[] | null {
  const values = results.filter((r) => r.id === id).map((r) => ({
    seed: r.seed,
    value: metric(r) ?? NaN,
  }));
  return values.length > 0 && values.every((v) => Number.isFinite(v.value)) ? values : null;
}

// ---- outputs ------------------------------------------------------------------------------------

async function writeOutputs(
  cfg: Config,
  specs: RunSpec[],
  results: RunResult[],
  experiment: LmExperiment,
): Promise<Record<string, unknown>> {
  const seeds = [...new Set(results.map((r) => r.seed))];
  const alphas = specs.flatMap((s) => s.sparse.method === "t-sr-ste" ? [s.sparse.alpha ?? 0] : []);
  const claims = claimSpecs(alphas).flatMap((c) => {
    const a = seededValues(results, c.a, c.metric), b = seededValues(results, c.b, c.metric);
    if (a === null || b === null) return [];
    return [{
      ...stats.pairedClaim(a, b, c.test, {
        claim: c.claim,
        difference: `${c.a} − ${c.b}, ${c.metricName}`,
      }),
      source: c.source,
      test: c.test,
    }];
  });
  const runsOf = (id: string) => results.filter((r) => r.id === id);
  const header = experiment.summaryHeader("flip_rate", cfg);
  const summary = {
    ...header,
    seeds,
    claims,
    runs: Object.fromEntries(results.map((r) => [`${r.id} #${r.seed}`, {
      id: r.id,
      seed: r.seed,
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

  const e = (v: number) => v.toExponential(2);
  // Mean ± 95% t half-width over seeds of a run's metric ("–" where a run lacks it).
  const cell = (id: string, metric: RunMetric, fmt: (v: number) => string) => {
    const values = seededValues(results, id, metric);
    if (values === null) return "–";
    const m = stats.meanInterval(values.map((v) => v.value));
    return Number.isNaN(m.halfWidth)
      ? `${fmt(m.mean)} (n = 1)`
      : `${fmt(m.mean)} ± ${fmt(m.halfWidth)}`;
  };
  const valLoss: RunMetric = (r) => r.val_loss;
  const denseLoss = seededValues(results, "dense", valLoss);
  const deltaCell = (id: string) => {
    const values = seededValues(results, id, valLoss);
    if (id === "dense" || denseLoss === null || values === null) return "—";
    const diff = stats.pairedDifferences(values, denseLoss).map((d) => d.difference);
    return stats.formatInterval(stats.meanInterval(diff), {
      digits: 4,
      bracket: true,
      signed: true,
    });
  };
  const lines = [
    `# Flip rate of 2:4 training methods (P1 flip-rate figure, P2 Fig. 4; scaled down)`,
    ``,
    producedBy(cfg, {
      script: "flip_rate.ts",
      header: summary,
      details: `peak LR ${cfg.lr}, warm-up ${cfg.warmup}, T-SR-STE mask refresh every ` +
        `${cfg.maskRefresh} steps`,
    }) + `, ${header.wall_seconds.toFixed(0)} s; ${seeds.length} seeds per run ` +
    `(${seeds.join(", ")}; a seed sets the initial weights, data order and MVUE draws).`,
    ``,
    `*Hard flip rate*: fraction of the hard top-2 mask bits of the dense weights (all FFN linears) ` +
    `changed by one optimizer step, measured every step for every method. *Mask-in-use flip ` +
    `rate*: the trainer's flip rate of the mask the method trains with; for T-SR-STE that is the ` +
    `transposable mask and the number is per refresh (${cfg.maskRefresh} steps), not per step. ` +
    `Thirds are of the ${cfg.steps} steps. Cells: mean ± the half-width of the 95% Student-t ` +
    `interval over seeds; Δ val loss: the paired difference against dense of the same seed, mean ` +
    `[95% interval]. The charts show the mean over seeds on a log scale and draw a flip rate of 0 ` +
    `at half a flip (${(0.5 / maskEntries(cfg)).toExponential(1)}).`,
    ``,
    `| run | hard flip, first third | hard flip, last third | mask-in-use flip, last third | val loss | Δ val loss vs dense | evaluated |`,
    `|---|---|---|---|---|---|---|`,
    ...specs.filter((s) => runsOf(s.id).length > 0).map((s) => {
      const r = runsOf(s.id)[0];
      return `| ${s.id} | ${cell(s.id, (x) => x.hard_flip_rate.first_third, e)} | ${
        cell(s.id, hardLast, e)
      } | ${cell(s.id, maskLast, e)}${r.mask_flip_rate.per === "refresh" ? " /refresh" : ""} | ${
        cell(s.id, valLoss, (v) => v.toFixed(4))
      } | ${deltaCell(s.id)} | ${r.evaluated} |`;
    }),
    ``,
    `## The papers' claims, judged from the intervals`,
    ``,
    `Each claim is a direction of the paired (by seed) difference of a flip rate: *agrees* when ` +
    `the whole 95% interval lies on the claimed side of 0, *disagrees* when it lies wholly on the ` +
    `other side, else *inconclusive*.`,
    ``,
    ...stats.claimRows(claims.map((c) => ({ ...c, claim: `${c.claim} (${c.source})` })), e),
    ``,
  ];
  await Deno.writeTextFile(`${cfg.out}/table.md`, lines.join("\n"));

  // Log-scale charts cannot show 0: a zero (frozen mask) is drawn at half a flip (said in
  // table.md).
  const floor = 0.5 / maskEntries(cfg);
  const plot = (curve: Curve, smooth = cfg.smooth) =>
    movingAverage(curve, smooth).map(([x, y]) => [x, Math.max(y, floor)] as [number, number]);
  const chart = (file: string, title: string, series: Series[], perRefresh = false) =>
    Deno.writeTextFile(
      `${cfg.out}/${file}`,
      lineChart(series, {
        title: `${title} (mean of ${seeds.length} seeds)`,
        xLabel: "optimizer steps",
        yLabel: perRefresh ? "flip rate per refresh" : `flip rate (${cfg.smooth}-step mean)`,
        logY: true,
      }),
    );
  const present = specs.filter((s) => runsOf(s.id).length > 0);
  const hardOf = (s: RunSpec) => meanCurve(runsOf(s.id).map((r) => hardCurve(r.log)));
  const hardSeries = (ss: RunSpec[], name = (s: RunSpec) => s.short) =>
    ss.map((s) => ({ name: name(s), points: plot(hardOf(s)) }));
  const alphaName = (s: RunSpec) => s.id === "dense" ? "dense" : s.short.replace("t-sr-ste ", "");
  const family = (name: Family) => present.filter((s) => s.families.includes(name));
  await chart(
    "flip_rate.svg",
    "Hard flip rate per step (the α sweep is in alpha_sweep.svg)",
    hardSeries(present.filter((s) => s.families.some((f) => f !== "alpha"))),
  );
  await chart("methods.svg", "Hard flip rate per step by method", hardSeries(family("methods")));
  await chart(
    "alpha_sweep.svg",
    "T-SR-STE α sweep: hard flip rate per step",
    hardSeries([...present.filter((s) => s.id === "dense"), ...family("alpha")], alphaName),
  );
  await chart(
    "alpha_sweep_mask.svg",
    `T-SR-STE α sweep: transposable-mask flips per ${cfg.maskRefresh}-step refresh`,
    family("alpha").map((s) => ({
      name: alphaName(s),
      points: plot(meanCurve(runsOf(s.id).map((r) => maskCurve(r.log))), 1),
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
