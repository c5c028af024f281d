/**
 * P1's warm-up selection of the masked-decay factor α (SPEC 2.3 and §11.5, this project's
 * operationalisation), at the size of `gpt2.ts`'s default preset, whose `--alpha` default is the α
 * selected here.
 *
 * For every seed of `--seeds`: a dense run and one T-SR-STE probe per α of `--alphas` (transposable
 * mask refreshed every step) train over a `--probeSteps` linear LR warm-up to `gpt2.ts`'s peak LR,
 * same initial weights and data order; every run measures the per-step flip rate of the
 * transposable mask of its own weights. The dense run's rate is the like-for-like bound. A probe is
 * healthy when, over the second half of the warm-up, its mean flip rate is at or below the bound
 * and the ratio probe/bound does not rise (slope interval wholly above 0); the smallest α healthy
 * in every seed is selected (`_alpha_selection.ts`).
 *
 * What to expect: small α (P1's 6e-6..2e-4) leaves T-SR-STE flipping its transposable mask more
 * than dense training does (at this scale the clipped gradient AdamW normalises is ~13× GPT-2
 * 124M's, see `flip_rate.ts`); some α between 1e-3 and 1e-1 brings it below.
 *
 * Usage:
 *   deno task alpha_select                                     # the `cpu` preset
 *   deno task alpha_select --preset=cpu-tiny --backend=reference --out=/tmp/as
 *   deno task alpha_select --preset=gpu --backend=webgpu --out=results/gpt2_gpu/alpha_selection
 *
 * Outputs (in `--out`, default `results/alpha_selection`): `summary.json` (`selected_alpha`),
 * `table.md`, `ratio.svg` (probe / dense transposable flip rate per step, first seed).
 *
 * @module
 */

import type { Batch } from "../core/gpt2.ts";
import type { SparseOptions } from "../core/sparse.ts";
import { writeSummary } from "./_summary.ts";
import { lineChart } from "./_plot.ts";
import { assertInt, parseConfig, parseList, runCli } from "./_config.ts";
import { type Curve, fmtAlpha, MaskFlips, movingAverage } from "./_flip_rate_measures.ts";
import { judgeProbe, type ProbeJudgement, selectAlpha } from "./_alpha_selection.ts";
import { GPT2_CPU, GPT2_GPU, LM_TINY } from "./_lm_presets.ts";
import { checkLmConfig, DATA_DIR, formatSeconds } from "./lm.ts";
import { LmExperiment, ranOn } from "./_lm_experiment.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "cpu", // cpu | cpu-tiny | gpu
  seeds: "1,2", // initialisation, data order and MVUE seeds; every seed runs dense and every probe
  backend: "auto", // auto | cpu | reference | webgpu
  out: "results/alpha_selection",
  data: DATA_DIR,
  ...GPT2_CPU, // the model, batch and peak LR of gpt2.ts's default preset
  // The probes' LR warm-up. gpt2.ts's 12 warm-up steps are too few to tell α's apart (the first
  // steps at a tiny LR measure the initialisation); 40 steps give 20 judged steps per probe.
  probeSteps: 40,
  alphas: "0,6e-5,1e-3,3e-3,1e-2,3e-2,1e-1", // the α grid (ascending)
  smooth: 3, // moving-average window of the plotted ratio
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  cpu: {},
  // The test suite's smoke run (seconds on the reference backend).
  "cpu-tiny": { ...LM_TINY, probeSteps: 8, alphas: "0,1e-1", smooth: 1 },
  // gpt2.ts's `gpu` preset (its T-SR-STE runs read the α selected here with --alphaFrom); the
  // grid spans P1's 6e-5 and the cpu preset's 1e-3.
  gpu: { ...GPT2_GPU, probeSteps: 40, alphas: "0,6e-5,3e-4,1e-3,1e-2" },
};

function parseNumbers(name: string, text: string, integer: boolean): number[] {
  const values = parseList(name, text, (item) => {
    const v = Number(item);
    if (!Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) {
      throw new TypeError(
        `Bad value for --${name}: expected a comma-separated list of ${
          integer ? "integers" : "numbers"
        } >= 0, got ${text}`,
      );
    }
    return v;
  });
  return [...new Set(values)].sort((a, b) => a - b);
}

interface ProbeRun {
  alpha: number | null; // null: the dense run
  seed: number;
  curve: Curve;
  seconds: number;
}

/**
 * Runs the α selection with `--key=value` arguments and writes its outputs.
 *
 * @param args Command-line arguments (`--preset=`, `--seeds=`, `--alphas=`, `--out=`, …).
 * @returns The summary written to `summary.json`.
 * @throws {TypeError} On an unknown option or a value that does not parse.
 * @throws {RangeError} On a value out of range.
 */
export async function main(args: string[]): Promise<Record<string, unknown>> {
  const cfg = parseConfig(defaults, args, presets);
  const seeds = parseNumbers("seeds", cfg.seeds, true);
  const alphas = parseNumbers("alphas", cfg.alphas, false);
  assertInt("probeSteps", cfg.probeSteps, 8);
  assertInt("smooth", cfg.smooth, 1);
  if (seeds.length < 2) {
    throw new RangeError(`Bad value for --seeds: the selection needs ≥ 2 seeds, got ${cfg.seeds}`);
  }
  const probe = (alpha: number): SparseOptions => ({ method: "t-sr-ste", alpha, maskRefresh: 1 });
  const lmCfg = {
    ...cfg,
    seed: seeds[0],
    steps: cfg.probeSteps + 1,
    warmup: cfg.probeSteps,
    minLr: 0,
    evalBatches: 1,
    checkpointEvery: 1,
  };
  checkLmConfig(lmCfg, [{ method: "dense" }, ...alphas.map(probe)]);
  const experiment = await LmExperiment.open(cfg, { checkpoints: false });

  const runs: ProbeRun[] = [];
  const total = seeds.length * (alphas.length + 1);
  for (const seed of seeds) {
    for (const alpha of [null, ...alphas]) {
      const label = alpha === null ? `dense s${seed}` : `α=${fmtAlpha(alpha)} s${seed}`;
      experiment.announce({ done: runs.length, total, label });
      const sparse = alpha === null ? { method: "dense" as const } : probe(alpha);
      runs.push(await probeRun(lmCfg, experiment, { sparse, seed, label, alpha }));
    }
  }

  const from = Math.ceil(cfg.probeSteps / 2);
  const dense = (seed: number) => runs.find((r) => r.alpha === null && r.seed === seed)!.curve;
  const judgements: ProbeJudgement[] = runs.filter((r) => r.alpha !== null).map((r) =>
    judgeProbe(r.alpha!, r.seed, r.curve, dense(r.seed), from)
  );
  const selection = selectAlpha(judgements);
  console.log(`\nα selection: ${selection.reason}`);
  return await writeOutputs(cfg, runs, judgements, selection, from, experiment);
}

/**
 * One probe (or the dense run) of a seed: the schedule of `lmCfg` ramps over the probe (`stopAt`
 * ends it at the peak LR), recording the transposable-mask flip rate of every step.
 */
async function probeRun(
  lmCfg: Config & { seed: number; steps: number; warmup: number; minLr: number },
  experiment: LmExperiment,
  run: { sparse: SparseOptions; seed: number; label: string; alpha: number | null },
): Promise<ProbeRun> {
  const { sparse, seed, label, alpha } = run;
  const flips = new MaskFlips("transposable");
  const { log } = await experiment.train(lmCfg, {
    label,
    sparse,
    seed,
    val: { batches: [] as Batch[], every: 0, dense: () => true },
    resume: false,
    stopAt: lmCfg.probeSteps,
    logEvery: lmCfg.probeSteps,
    onStep: async (t) => ({ transposableFlipRate: await flips.measure(t.model) }),
  });
  flips.dispose(experiment.backend);
  // The flips step s made, plotted at x = s + 1 (steps completed).
  const curve: Curve = log.steps.filter((s) => typeof s.extra?.transposableFlipRate === "number")
    .map((s) => [s.step + 1, s.extra!.transposableFlipRate as number]);
  return { alpha, seed, curve, seconds: log.trainSeconds };
}

async function writeOutputs(
  cfg: Config,
  runs: ProbeRun[],
  judgements: ProbeJudgement[],
  selection: { selected: number; healthy: boolean; reason: string },
  from: number,
  experiment: LmExperiment,
): Promise<Record<string, unknown>> {
  const summary = {
    ...experiment.summaryHeader("alpha_selection", cfg),
    procedure: "SPEC 2.3: per seed, a dense run and one T-SR-STE probe per α (maskRefresh 1) " +
      `over a ${cfg.probeSteps}-step LR warm-up; per-step transposable-mask flip rate of each ` +
      `run's own weights; judged over steps ≥ ${from}: healthy = mean probe rate ≤ mean dense ` +
      "rate and the OLS slope of probe/dense per step not wholly above 0 (95% t interval); the " +
      "smallest α healthy in every seed is selected",
    selected_alpha: selection.selected,
    any_healthy: selection.healthy,
    reason: selection.reason,
    judgements,
    curves: runs.map((r) => ({ alpha: r.alpha, seed: r.seed, curve: r.curve })),
  };
  await writeSummary(cfg.out, summary);

  const e = (v: number) => v.toExponential(2);
  const lines = [
    `# Warm-up selection of T-SR-STE's masked-decay α (SPEC 2.3)`,
    ``,
    `Produced by \`experiments/alpha_select.ts\` (preset \`${cfg.preset}\`: ${cfg.nLayer} layers ` +
    `× ${cfg.nEmbd} wide, context ${cfg.blockSize}, batch ${cfg.batchSize}, vocabulary ` +
    `${cfg.vocab}, LR warm-up of ${cfg.probeSteps} steps to ${cfg.lr}; seeds ${cfg.seeds}) on ` +
    `${ranOn(summary)}, ` +
    `${formatSeconds(summary.wall_seconds)}.`,
    ``,
    `Per-step flip rate of the **transposable** mask of each run's own weights (the probes ` +
    `refresh it every step; the dense run's is the bound). Judged over steps ${from}–` +
    `${cfg.probeSteps}: *below* = mean probe rate ≤ mean dense rate; *rising* = the 95% interval ` +
    `of the slope of probe/dense per step lies wholly above 0.`,
    ``,
    `| α | seed | probe flip rate | dense bound | probe/dense | slope of ratio per step [95% CI] | below | rising | healthy |`,
    `|---|---|---|---|---|---|---|---|---|`,
    ...judgements.map((j) =>
      `| ${fmtAlpha(j.alpha)} | ${j.seed} | ${e(j.flip_rate)} | ${e(j.bound)} | ${
        (j.flip_rate / j.bound).toFixed(3)
      } | ${e(j.ratio_slope.slope)} [${e(j.ratio_slope.lo)}, ${e(j.ratio_slope.hi)}] | ${
        j.below_bound ? "yes" : "no"
      } | ${j.rising ? "**yes**" : "no"} | ${j.healthy ? "**yes**" : "no"} |`
    ),
    ``,
    `Selected: **α = ${fmtAlpha(selection.selected)}** (${
      cfg.preset === "cpu"
        ? "`gpt2.ts --alpha`'s default"
        : `what \`gpt2.ts --preset=${cfg.preset} --alphaFrom=<this summary.json>\` trains with`
    }). ` +
    `${selection.reason}.`,
    ``,
  ];
  await Deno.writeTextFile(`${cfg.out}/table.md`, lines.join("\n"));

  const seed = runs[0].seed;
  const denseAt = new Map(runs.find((r) => r.alpha === null && r.seed === seed)!.curve);
  const ratio = (c: Curve): Curve =>
    c.filter(([x]) => (denseAt.get(x) ?? 0) > 0).map(([x, y]) => [x, y / denseAt.get(x)!]);
  await Deno.writeTextFile(
    `${cfg.out}/ratio.svg`,
    lineChart(
      runs.filter((r) => r.alpha !== null && r.seed === seed).map((r) => ({
        name: `α=${fmtAlpha(r.alpha!)}`,
        points: movingAverage(ratio(r.curve), cfg.smooth),
      })),
      {
        title: `T-SR-STE probe / dense transposable flip rate per step (seed ${seed})`,
        xLabel: "optimizer steps (LR warm-up)",
        yLabel: `ratio (${cfg.smooth}-step mean)`,
      },
    ),
  );
  console.log(`\n${lines.join("\n")}`);
  console.log(`wrote ${cfg.out}/{summary.json,table.md,ratio.svg}`);
  return summary;
}

if (import.meta.main) await runCli(main);
