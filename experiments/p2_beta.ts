/**
 * P2 Fig. 4 (scaled down): S-STE's scale β. A constant-β sweep (β fixed for all of training) beside
 * SPEC 1.3's MSE β frozen at initialisation and recomputed every step (dynamic), on the small 2:4
 * MLP of `_mlp24.ts`; and β per layer per step, frozen vs dynamic.
 *
 * What to expect (P2 §4, SPEC §5): the frozen MSE β trains better than no scale (β = 1); the
 * dynamic β drifts during training and makes the flip rate worse than the frozen one. Verdicts are
 * paired by seed with 95% t intervals.
 *
 * Usage:
 *   deno task p2_beta                                           # the default, ~2 minutes
 *   deno task p2_beta --preset=tiny --out=/tmp/p2b
 *
 * Outputs (in `--out`, default `results/p2_beta`): `summary.json`, `table.md`, `beta_sweep.svg`
 * (test loss and flip rate against constant β), `beta_per_step.svg` (β per layer per step, frozen
 * vs dynamic, first seed).
 *
 * @module
 */

import { lineChart } from "./_plot.ts";
import { summaryFields, writeSummary } from "./_summary.ts";
import { assertInt, assertNumber, parseConfig, parseList, runCli } from "./_config.ts";
import { ciCell, type Claim, claimRows, pairedClaim } from "./_stats.ts";
import { type BetaChoice, makeTask, Mlp, MLP_DEFAULTS, mlpSizes, parseSeeds } from "./_mlp24.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "default", // default | tiny
  seeds: "1,2,3,4,5",
  betas: "0.5,1,1.25,1.5,2,3", // the constant-β sweep
  steps: 300,
  burnIn: 10, // first steps left out of the mean flip rate
  lr: 3e-3,
  batchSize: 64,
  ...MLP_DEFAULTS,
  out: "results/p2_beta",
};

const presets: Record<string, Partial<typeof defaults>> = {
  default: {},
  tiny: {
    seeds: "1,2",
    betas: "1,2",
    steps: 12,
    burnIn: 2,
    hidden: 16,
    trainSize: 256,
    testSize: 128,
  },
};

interface BetaRun {
  recipe: string;
  seed: number;
  test_loss: number;
  test_accuracy: number;
  flip_rate: number;
  /** β per layer after every step. */
  betas: number[][];
}

function recipeName(beta: BetaChoice): string {
  return typeof beta === "number" ? `β=${beta}` : beta;
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
  const constants = parseList("betas", cfg.betas, (item) => {
    const v = Number(item);
    if (!(v > 0) || !Number.isFinite(v)) {
      throw new TypeError(`Bad value for --betas: expected numbers > 0, got ${cfg.betas}`);
    }
    return v;
  });
  assertInt("steps", cfg.steps, 4);
  assertInt("burnIn", cfg.burnIn, 0, cfg.steps - 1);
  assertInt("batchSize", cfg.batchSize, 1);
  assertNumber("lr", cfg.lr, 0, { exclusiveMin: true });
  await Deno.mkdir(cfg.out, { recursive: true });
  const started = performance.now();
  const recipes: BetaChoice[] = ["mse-frozen", "mse-dynamic", ...constants];
  const runs: BetaRun[] = [];
  for (const seed of seeds) {
    const task = makeTask(sizes, seed);
    for (const beta of recipes) {
      const model = new Mlp(sizes, { kind: "soft", beta, seed });
      const betas = [model.layers.map((l) => l.beta)];
      let flips = 0;
      for (let s = 0; s < cfg.steps; s++) {
        const r = model.trainStep(task.train, { lr: cfg.lr, batchSize: cfg.batchSize, seed });
        if (s >= cfg.burnIn) flips += r.flipRate;
        betas.push(r.betas);
      }
      const test = model.evaluate(task.test);
      runs.push({
        recipe: recipeName(beta),
        seed,
        test_loss: test.loss,
        test_accuracy: test.accuracy,
        flip_rate: flips / (cfg.steps - cfg.burnIn),
        betas,
      });
      console.log(
        `${recipeName(beta)} seed ${seed}: test ${test.loss.toFixed(4)} (${
          (100 * test.accuracy).toFixed(1)
        }%), flip ${(flips / (cfg.steps - cfg.burnIn)).toExponential(2)}, β ${
          betas.at(-1)!.map((b) => b.toFixed(3)).join("/")
        }`,
      );
    }
  }

  const values = (recipe: string, metric: "test_loss" | "flip_rate" | "test_accuracy") =>
    runs.filter((r) => r.recipe === recipe).map((r) => ({ seed: r.seed, value: r[metric] }));
  const compare = (
    a: string,
    b: string,
    metric: "test_loss" | "flip_rate",
    claim: Claim,
    text: string,
  ) =>
    pairedClaim(values(a, metric), values(b, metric), claim, {
      claim: text,
      difference: `${a} − ${b}, ${metric}`,
    });
  const verdicts = [
    compare(
      "mse-dynamic",
      "mse-frozen",
      "flip_rate",
      { kind: "above" },
      "a dynamic β raises the flip rate",
    ),
    compare(
      "mse-dynamic",
      "mse-frozen",
      "test_loss",
      { kind: "above" },
      "a dynamic β trains worse than the frozen one",
    ),
    ...(constants.includes(1)
      ? [
        compare(
          "β=1",
          "mse-frozen",
          "test_loss",
          { kind: "above" },
          "no scale (β = 1) trains worse than the frozen MSE β",
        ),
      ]
      : []),
  ];

  const initialBetas = runs.filter((r) => r.recipe === "mse-frozen").map((r) => r.betas[0]);
  const summary = {
    ...summaryFields("p2_beta", { started, config: cfg }),
    runs: runs.map(({ betas, ...r }) => ({
      ...r,
      beta_first: betas[0],
      beta_last: betas.at(-1),
    })),
    beta_per_step_first_seed: Object.fromEntries(
      ["mse-frozen", "mse-dynamic"].map((recipe) => [
        recipe,
        runs.find((r) => r.recipe === recipe && r.seed === seeds[0])!.betas,
      ]),
    ),
    verdicts,
  };
  await writeSummary(cfg.out, summary);

  const ci = ciCell;

  const lastBetas = (recipe: string) =>
    runs.filter((r) => r.recipe === recipe).map((r) => r.betas.at(-1)!);
  const lines = [
    `# P2 Fig. 4 (scaled down): S-STE's β — constant sweep, frozen vs dynamic`,
    ``,
    `Produced by \`experiments/p2_beta.ts\` (preset \`${cfg.preset}\`: a ${cfg.inputs}→` +
    `${cfg.hidden}→${cfg.classes} tanh MLP, both weights soft-thresholded 2:4 and scaled by β, ` +
    `teacher-student task of ${cfg.trainSize} examples; Adam, LR ${cfg.lr}, batch ` +
    `${cfg.batchSize}, ${cfg.steps} steps; seeds ${cfg.seeds}), ${summary.date.slice(0, 10)}, ` +
    `${summary.wall_seconds.toFixed(0)} s on a shared 2-core CPU. MSE β at initialisation: ` +
    `${initialBetas.map((b) => b.map((x) => x.toFixed(3)).join("/")).join(", ")} ` +
    `(layer 1/layer 2, by seed).`,
    ``,
    `Mean over seeds [95% t interval]; flip rate = hard top-2 mask bits changed per step (steps ` +
    `≥ ${cfg.burnIn}).`,
    ``,
    `| β | test loss | test accuracy % | flip rate per step ×10³ | β at the end (layer 1 / 2) |`,
    `|---|---|---|---|---|`,
    ...recipes.map(recipeName).map((recipe) =>
      `| ${recipe} | ${ci(values(recipe, "test_loss").map((v) => v.value), 4)} | ${
        ci(values(recipe, "test_accuracy").map((v) => v.value), 1, 100)
      } | ${ci(values(recipe, "flip_rate").map((v) => v.value), 3, 1e3)} | ${
        ci(lastBetas(recipe).map((b) => b[0]), 3)
      } / ${ci(lastBetas(recipe).map((b) => b[1]), 3)} |`
    ),
    ``,
    ...claimRows(verdicts, (v) => v.toExponential(2)),
    ``,
  ];
  await Deno.writeTextFile(`${cfg.out}/table.md`, lines.join("\n"));

  const sweep = (metric: "test_loss" | "flip_rate", scale: number) =>
    constants.map((b) => {
      const xs = values(`β=${b}`, metric).map((v) => v.value * scale);
      return [b, xs.reduce((a, x) => a + x, 0) / xs.length] as [number, number];
    });
  await Deno.writeTextFile(
    `${cfg.out}/beta_sweep.svg`,
    lineChart(
      [
        { name: "test loss", points: sweep("test_loss", 1) },
        { name: "flip rate ×100", points: sweep("flip_rate", 100) },
      ],
      {
        title: `Constant β: test loss and flip rate (mean of ${seeds.length} seeds)`,
        xLabel: "β",
        yLabel: "test loss / flip rate ×100",
      },
    ),
  );
  const perStep = summary.beta_per_step_first_seed;
  await Deno.writeTextFile(
    `${cfg.out}/beta_per_step.svg`,
    lineChart(
      ["mse-frozen", "mse-dynamic"].flatMap((recipe) =>
        [0, 1].map((layer) => ({
          name: `${recipe}, layer ${layer + 1}`,
          points: perStep[recipe].map((b, s) => [s, b[layer]] as [number, number]),
        }))
      ),
      {
        title: `β per layer per step, frozen vs dynamic (seed ${seeds[0]})`,
        xLabel: "optimizer steps",
        yLabel: "β",
      },
    ),
  );
  console.log(`\n${lines.join("\n")}`);
  return summary;
}

if (import.meta.main) await runCli(main);
