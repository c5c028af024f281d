/**
 * P2 Table 7 (scaled down): pre-training × fine-tuning thresholding. The small 2:4 MLP of
 * `_mlp24.ts` is pre-trained with hard (STE) or soft (S-STE, frozen MSE β) thresholding on a
 * teacher-student task, then its hidden layer is fine-tuned with a new output layer (fresh Adam),
 * hard or soft thresholding, on a second task over the same inputs whose teacher shares the hidden
 * layer and has a new output layer; the
 * fine-tuned model is evaluated with its 2:4 weights. Switching to soft thresholding computes β
 * from the pre-trained weights (SPEC 1.3, then frozen); switching to hard drops it.
 *
 * What to expect (P2 Table 7): soft thresholding in both phases is best; soft fine-tuning helps a
 * hard pre-trained model. Verdicts are paired by seed with 95% t intervals.
 *
 * Usage:
 *   deno task p2_finetune                                       # the default, ~4 minutes
 *   deno task p2_finetune --preset=tiny --out=/tmp/p2f
 *
 * Outputs (in `--out`, default `results/p2_finetune`): `summary.json`, `table.md`,
 * `finetune.svg` (fine-tuning test loss per evaluation, first seed).
 *
 * @module
 */

import { lineChart } from "./_plot.ts";
import { summaryFields, writeSummary } from "./_summary.ts";
import { assertInt, assertNumber, parseConfig, runCli } from "./_config.ts";
import { ciCell, claimRows, pairedClaim } from "./_stats.ts";
import { makeTask, Mlp, MLP_DEFAULTS, mlpSizes, parseSeeds, type Thresholding } from "./_mlp24.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "default", // default | tiny
  seeds: "1,2,3,4,5",
  pretrainSteps: 300,
  finetuneSteps: 450, // long enough for every cell to converge (at 150, hard fine-tuning leads)
  lr: 3e-3,
  finetuneLr: 3e-3,
  batchSize: 64,
  evalEvery: 25, // fine-tuning steps between test evaluations (the curve)
  ...MLP_DEFAULTS,
  out: "results/p2_finetune",
};

const presets: Record<string, Partial<typeof defaults>> = {
  default: {},
  tiny: {
    seeds: "1,2",
    pretrainSteps: 10,
    finetuneSteps: 6,
    evalEvery: 3,
    hidden: 16,
    trainSize: 256,
    testSize: 128,
  },
};

const KINDS: Thresholding[] = ["hard", "soft"];

interface Cell {
  pretrain: Thresholding;
  finetune: Thresholding;
  seed: number;
  pretrain_test_loss: number;
  test_loss: number;
  test_accuracy: number;
  curve: [number, number][];
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
  assertInt("pretrainSteps", cfg.pretrainSteps, 1);
  assertInt("finetuneSteps", cfg.finetuneSteps, 1);
  assertInt("evalEvery", cfg.evalEvery, 1);
  assertInt("batchSize", cfg.batchSize, 1);
  assertNumber("lr", cfg.lr, 0, { exclusiveMin: true });
  assertNumber("finetuneLr", cfg.finetuneLr, 0, { exclusiveMin: true });
  await Deno.mkdir(cfg.out, { recursive: true });
  const started = performance.now();
  const cells: Cell[] = [];
  for (const seed of seeds) {
    const pretrainTask = makeTask(sizes, seed);
    // Same inputs and teacher hidden layer, a new teacher output layer.
    const finetuneTask = makeTask(sizes, seed, seed + 500);
    for (const pretrain of KINDS) {
      const base = new Mlp(sizes, { kind: pretrain, beta: "mse-frozen", seed });
      for (let s = 0; s < cfg.pretrainSteps; s++) {
        base.trainStep(pretrainTask.train, { lr: cfg.lr, batchSize: cfg.batchSize, seed });
      }
      const pretrainLoss = base.evaluate(pretrainTask.test).loss;
      const weights = base.layers.map((l) => l.w.slice());
      for (const finetune of KINDS) {
        // The pre-trained hidden layer and a new output layer (a fresh head, as a GLUE fine-tune
        // adds one), the same fresh head for every cell of a seed.
        const model = new Mlp(sizes, { kind: pretrain, beta: "mse-frozen", seed: seed + 500 });
        model.layers[0].w = weights[0].slice();
        model.setThresholding(finetune, "mse-frozen");
        model.resetOptimizer();
        const curve: [number, number][] = [[0, model.evaluate(finetuneTask.test).loss]];
        for (let s = 1; s <= cfg.finetuneSteps; s++) {
          model.trainStep(finetuneTask.train, {
            lr: cfg.finetuneLr,
            batchSize: cfg.batchSize,
            seed: seed + 10_000,
          });
          if (s % cfg.evalEvery === 0) curve.push([s, model.evaluate(finetuneTask.test).loss]);
        }
        const test = model.evaluate(finetuneTask.test);
        cells.push({
          pretrain,
          finetune,
          seed,
          pretrain_test_loss: pretrainLoss,
          test_loss: test.loss,
          test_accuracy: test.accuracy,
          curve,
        });
        console.log(
          `pre-train ${pretrain} → fine-tune ${finetune}, seed ${seed}: pre-train test ${
            pretrainLoss.toFixed(4)
          }, fine-tuned test ${test.loss.toFixed(4)} (${(100 * test.accuracy).toFixed(1)}%)`,
        );
      }
    }
  }

  const name = (p: Thresholding, f: Thresholding) => `${p}→${f}`;
  const values = (p: Thresholding, f: Thresholding, metric: "test_loss" | "test_accuracy") =>
    cells.filter((c) => c.pretrain === p && c.finetune === f)
      .map((c) => ({ seed: c.seed, value: c[metric] }));
  const compare = (
    a: [Thresholding, Thresholding],
    b: [Thresholding, Thresholding],
    text: string,
  ) =>
    pairedClaim(values(...a, "test_loss"), values(...b, "test_loss"), { kind: "below" }, {
      claim: text,
      difference: `${name(...a)} − ${name(...b)}, test loss`,
    });
  const verdicts = [
    compare(["soft", "soft"], ["hard", "hard"], "soft in both phases beats hard in both"),
    compare(["soft", "soft"], ["soft", "hard"], "a soft pre-trained model fine-tunes better soft"),
    compare(["hard", "soft"], ["hard", "hard"], "a hard pre-trained model fine-tunes better soft"),
    compare(["soft", "soft"], ["hard", "soft"], "soft pre-training helps soft fine-tuning"),
  ];

  const summary = {
    ...summaryFields("p2_finetune", { started, config: cfg }),
    cells,
    verdicts,
  };
  await writeSummary(cfg.out, summary);

  const ci = ciCell;

  const lines = [
    `# P2 Table 7 (scaled down): pre-training × fine-tuning thresholding`,
    ``,
    `Produced by \`experiments/p2_finetune.ts\` (preset \`${cfg.preset}\`: a ${cfg.inputs}→` +
    `${cfg.hidden}→${cfg.classes} tanh MLP, both weights 2:4; pre-trained ${cfg.pretrainSteps} ` +
    `steps at LR ${cfg.lr} on one teacher's labels; the hidden layer with a new output layer ` +
    `fine-tuned ${cfg.finetuneSteps} steps at LR ${cfg.finetuneLr} (fresh Adam) on a second ` +
    `teacher's labels of the same inputs; batch ` +
    `${cfg.batchSize}; seeds ${cfg.seeds}), ${summary.date.slice(0, 10)}, ` +
    `${summary.wall_seconds.toFixed(0)} s on a shared 2-core CPU. Evaluated with the 2:4 ` +
    `weights. Mean over seeds [95% t interval].`,
    ``,
    `| pre-train ↓ / fine-tune → | hard: test loss | hard: accuracy % | soft: test loss | soft: accuracy % |`,
    `|---|---|---|---|---|`,
    ...KINDS.map((p) =>
      `| ${p} | ${
        KINDS.map((f) =>
          `${ci(values(p, f, "test_loss").map((v) => v.value), 4)} | ${
            ci(values(p, f, "test_accuracy").map((v) => v.value), 1, 100)
          }`
        ).join(" | ")
      } |`
    ),
    ``,
    ...claimRows(verdicts, (v) => v.toFixed(4)),
    ``,
  ];
  await Deno.writeTextFile(`${cfg.out}/table.md`, lines.join("\n"));
  await Deno.writeTextFile(
    `${cfg.out}/finetune.svg`,
    lineChart(
      KINDS.flatMap((p) =>
        KINDS.map((f) => ({
          name: `pre-train ${p} → fine-tune ${f}`,
          points: cells.find((c) => c.pretrain === p && c.finetune === f && c.seed === seeds[0])!
            .curve,
        }))
      ),
      {
        title: `Fine-tuning test loss (seed ${seeds[0]})`,
        xLabel: "fine-tuning steps",
        yLabel: "test loss (2:4 weights)",
      },
    ),
  );
  console.log(`\n${lines.join("\n")}`);
  return summary;
}

if (import.meta.main) await runCli(main);
