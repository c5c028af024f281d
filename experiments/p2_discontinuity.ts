/**
 * P2 Figs. 1–2 (scaled down): the discontinuity of hard thresholding. For hard (STE) and soft
 * (S-STE, frozen MSE β) thresholding, every optimizer step of a small 2:4 MLP (`_mlp24.ts`) records,
 * on the step's own batch, the loss change predicted by the gradient (first order, `⟨g, Δw⟩`), the
 * actual change with the masks recomputed from the new weights (ΔF₁) and the change with the masks
 * of before the step (ΔF₂, frozen mask) — SPEC §6's discontinuity diagnostics.
 *
 * What to expect (P2 §3): hard thresholding's mask flips make ΔF₁ depart from ΔF₂ and from the
 * prediction (a kept weight that drops out jumps to 0); soft thresholding is continuous (an entry
 * enters or leaves the kept set at output 0), so ΔF₁ ≈ ΔF₂ and the prediction holds about as well
 * as for a fixed mask. Verdicts are paired by seed (hard − soft) with 95% t intervals.
 *
 * Usage:
 *   deno task p2_discontinuity                                  # the default, ~1 minute
 *   deno task p2_discontinuity --preset=tiny --out=/tmp/p2d
 *
 * Outputs (in `--out`, default `results/p2_discontinuity`): `summary.json`, `table.md`,
 * `fig1_hard.svg`, `fig1_soft.svg` (per-step ΔF₁, ΔF₂, prediction; first seed), `fig2.svg` (per-step
 * |ΔF₁ − prediction| and |ΔF₁ − ΔF₂|, hard vs soft).
 *
 * @module
 */

import { lineChart } from "./_plot.ts";
import { summaryFields, writeSummary } from "./_summary.ts";
import { assertInt, assertNumber, parseConfig, runCli } from "./_config.ts";
import { ciCell, type Claim, claimRows, pairedClaim } from "./_stats.ts";
import {
  makeTask,
  Mlp,
  MLP_DEFAULTS,
  mlpSizes,
  parseSeeds,
  type StepRecord,
  type Thresholding,
} from "./_mlp24.ts";
import { movingAverage } from "./_flip_rate_measures.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "default", // default | tiny
  seeds: "1,2,3,4,5", // task, initialisation and batch-order seeds
  steps: 300,
  burnIn: 10, // first steps left out of the statistics (Adam's bias correction)
  lr: 3e-3,
  batchSize: 64,
  ...MLP_DEFAULTS,
  smooth: 5, // moving-average window of the plotted curves
  out: "results/p2_discontinuity",
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  default: {},
  tiny: { seeds: "1,2", steps: 20, burnIn: 2, hidden: 16, trainSize: 256, testSize: 128 },
};

interface RunMetrics {
  kind: Thresholding;
  seed: number;
  flip_rate: number;
  /** mean |ΔF₁ − ΔF₂| / mean |ΔF₂|: the mask change's share of a step's loss change. */
  mask_share: number;
  /** mean |ΔF₁ − ⟨∇F,Δw⟩| / mean |⟨∇F,Δw⟩| (the true gradient of the current piece). */
  prediction_error: number;
  /** Same for the frozen mask: mean |ΔF₂ − ⟨∇F,Δw⟩| / mean |⟨∇F,Δw⟩|. */
  prediction_error_frozen: number;
  /** mean |ΔF₁ − ⟨g,Δw⟩| / mean |⟨g,Δw⟩| with the method's straight-through gradient g. */
  prediction_error_ste: number;
  /** Fraction of steps predicted to descend whose actual loss rose. */
  wrong_direction: number;
  test_loss: number;
  test_accuracy: number;
}

function metrics(kind: Thresholding, seed: number, recs: StepRecord[]): Omit<
  RunMetrics,
  "test_loss" | "test_accuracy"
> {
  const avg = (f: (r: StepRecord) => number) => recs.reduce((a, r) => a + f(r), 0) / recs.length;
  const predicted = avg((r) => Math.abs(r.predictedExact));
  const descending = recs.filter((r) => r.predictedExact < 0);
  return {
    kind,
    seed,
    flip_rate: avg((r) => r.flipRate),
    mask_share: avg((r) => Math.abs(r.actual - r.frozen)) / avg((r) => Math.abs(r.frozen)),
    prediction_error: avg((r) => Math.abs(r.actual - r.predictedExact)) / predicted,
    prediction_error_frozen: avg((r) => Math.abs(r.frozen - r.predictedExact)) / predicted,
    prediction_error_ste: avg((r) => Math.abs(r.actual - r.predicted)) /
      avg((r) => Math.abs(r.predicted)),
    wrong_direction: descending.filter((r) => r.actual > 0).length / descending.length,
  };
}

/**
 * Runs the experiment with `--key=value` arguments and writes its outputs.
 *
 * @param args Command-line arguments.
 * @returns The summary written to `summary.json`.
 * @throws {TypeError} On an unknown option or a value that does not parse.
 * @throws {RangeError} On a value out of range.
 */
export async function main(args: string[]): Promise<Record<string, unknown>> {
  const cfg = parseConfig(defaults, args, presets);
  const seeds = parseSeeds("seeds", cfg.seeds, 2);
  const sizes = mlpSizes(cfg);
  assertInt("steps", cfg.steps, 4);
  assertInt("burnIn", cfg.burnIn, 0, cfg.steps - 3);
  assertInt("batchSize", cfg.batchSize, 1);
  assertInt("smooth", cfg.smooth, 1);
  assertNumber("lr", cfg.lr, 0, { exclusiveMin: true });
  await Deno.mkdir(cfg.out, { recursive: true });
  const started = performance.now();
  const kinds: Thresholding[] = ["hard", "soft"];
  const runs: RunMetrics[] = [];
  const curves: Record<string, StepRecord[]> = {};
  for (const seed of seeds) {
    const task = makeTask(sizes, seed);
    for (const kind of kinds) {
      const model = new Mlp(sizes, { kind, beta: "mse-frozen", seed });
      const recs: StepRecord[] = [];
      for (let s = 0; s < cfg.steps; s++) {
        recs.push(model.trainStep(task.train, { lr: cfg.lr, batchSize: cfg.batchSize, seed }));
      }
      const test = model.evaluate(task.test);
      const m = {
        ...metrics(kind, seed, recs.slice(cfg.burnIn)),
        test_loss: test.loss,
        test_accuracy: test.accuracy,
      };
      runs.push(m);
      if (seed === seeds[0]) curves[kind] = recs;
      console.log(
        `${kind} seed ${seed}: flip ${m.flip_rate.toExponential(2)}, mask share ${
          m.mask_share.toFixed(3)
        }, prediction error ${m.prediction_error.toFixed(3)} (frozen ${
          m.prediction_error_frozen.toFixed(3)
        }), wrong direction ${m.wrong_direction.toFixed(3)}, test ${test.loss.toFixed(4)}`,
      );
    }
  }

  // Claims of P2 §3, as paired differences hard − soft by seed.
  const claims: { metric: keyof RunMetrics; claim: Claim; text: string }[] = [
    {
      metric: "mask_share",
      claim: { kind: "above" },
      text: "mask flips move hard thresholding's loss away from the frozen-mask change more",
    },
    {
      metric: "prediction_error",
      claim: { kind: "above" },
      text: "the gradient predicts hard thresholding's loss change worse",
    },
    {
      metric: "wrong_direction",
      claim: { kind: "above" },
      text: "hard thresholding's loss rises more often where the gradient predicts descent",
    },
  ];
  const value = (kind: Thresholding, metric: keyof RunMetrics) =>
    runs.filter((r) => r.kind === kind).map((r) => ({ seed: r.seed, value: r[metric] as number }));
  const verdicts = claims.map(({ metric, claim, text }) =>
    pairedClaim(value("hard", metric), value("soft", metric), claim, {
      claim: text,
      difference: `hard − soft, ${metric}`,
    })
  );

  const summary = {
    ...summaryFields("p2_discontinuity", { started, config: cfg }),
    runs,
    verdicts,
    curves_first_seed: curves,
  };
  await writeSummary(cfg.out, summary);

  const f3 = (v: number) => v.toFixed(3);
  const byKind = (kind: Thresholding, metric: keyof RunMetrics) =>
    ciCell(value(kind, metric).map((v) => v.value), 3);
  const metricRows: [keyof RunMetrics, string][] = [
    ["flip_rate", "mask flip rate per step"],
    ["mask_share", "mask share: mean abs(ΔF₁ − ΔF₂) / mean abs(ΔF₂)"],
    ["prediction_error", "prediction error, new mask: mean abs(ΔF₁ − ⟨∇F,Δw⟩) / mean abs(⟨∇F,Δw⟩)"],
    [
      "prediction_error_frozen",
      "prediction error, frozen mask: mean abs(ΔF₂ − ⟨∇F,Δw⟩) / mean abs(⟨∇F,Δw⟩)",
    ],
    [
      "prediction_error_ste",
      "prediction error, new mask, STE gradient: mean abs(ΔF₁ − ⟨g,Δw⟩) / mean abs(⟨g,Δw⟩)",
    ],
    ["wrong_direction", "steps predicted to descend whose loss rose"],
    ["test_loss", "test loss after training"],
    ["test_accuracy", "test accuracy after training"],
  ];
  const lines = [
    `# P2 Figs. 1–2 (scaled down): hard vs soft thresholding, predicted vs actual loss change`,
    ``,
    `Produced by \`experiments/p2_discontinuity.ts\` (preset \`${cfg.preset}\`: a ${cfg.inputs}→` +
    `${cfg.hidden}→${cfg.classes} tanh MLP, both weights 2:4, on a teacher-student task of ` +
    `${cfg.trainSize} examples; Adam, LR ${cfg.lr}, batch ${cfg.batchSize}, ${cfg.steps} steps; ` +
    `seeds ${cfg.seeds}; statistics over steps ≥ ${cfg.burnIn}), ${summary.date.slice(0, 10)}, ` +
    `${summary.wall_seconds.toFixed(0)} s on a shared 2-core CPU.`,
    ``,
    `Per step, on the step's own batch: Δw Adam's update; ⟨∇F,Δw⟩ the first-order prediction ` +
    `with the true gradient of the loss as a function of w on the current mask's piece ` +
    `(hard: M⊙∂L/∂W̃; soft: β·∂L/∂W̃ on kept entries and τ's pull on the largest pruned one); ` +
    `⟨g,Δw⟩ the same with the method's straight-through gradient g; ΔF₁ the actual loss change ` +
    `(masks recomputed), ΔF₂ the change with the masks (and β) of before the step. Mean over ` +
    `seeds [95% t interval].`,
    ``,
    `| metric | hard (STE) | soft (S-STE, frozen β) |`,
    `|---|---|---|`,
    ...metricRows.map(([m, text]) => `| ${text} | ${byKind("hard", m)} | ${byKind("soft", m)} |`),
    ``,
    ...claimRows(verdicts, f3),
    ``,
  ];
  await Deno.writeTextFile(`${cfg.out}/table.md`, lines.join("\n"));

  const smooth = (pts: [number, number][]) => movingAverage(pts, cfg.smooth);
  for (const kind of kinds) {
    const recs = curves[kind];
    await Deno.writeTextFile(
      `${cfg.out}/fig1_${kind}.svg`,
      lineChart(
        [
          {
            name: "predicted ⟨∇F,Δw⟩",
            points: smooth(recs.map((r) => [r.step, r.predictedExact])),
          },
          { name: "actual ΔF₁ (new mask)", points: smooth(recs.map((r) => [r.step, r.actual])) },
          { name: "ΔF₂ (frozen mask)", points: smooth(recs.map((r) => [r.step, r.frozen])) },
        ],
        {
          title: `${kind} thresholding: loss change per step (seed ${seeds[0]})`,
          xLabel: "optimizer step",
          yLabel: `loss change (${cfg.smooth}-step mean)`,
        },
      ),
    );
  }
  await Deno.writeTextFile(
    `${cfg.out}/fig2.svg`,
    lineChart(
      kinds.flatMap((kind) => [
        {
          name: `${kind}: |ΔF₁ − ⟨∇F,Δw⟩|`,
          points: smooth(curves[kind].map((r) => [r.step, Math.abs(r.actual - r.predictedExact)])),
        },
        {
          name: `${kind}: |ΔF₁ − ΔF₂|`,
          points: smooth(curves[kind].map((r) => [r.step, Math.abs(r.actual - r.frozen)])),
        },
      ]),
      {
        title: `Prediction error and mask-flip effect per step (seed ${seeds[0]})`,
        xLabel: "optimizer step",
        yLabel: `|difference| (${cfg.smooth}-step mean)`,
      },
    ),
  );
  console.log(`\n${lines.join("\n")}`);
  return summary;
}

if (import.meta.main) await runCli(main);
