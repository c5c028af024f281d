/**
 * Ablations of the 2:4 methods — scaled-down reproductions of P2 Table 2 (the β recipe of S-STE),
 * P2 Table 3 (where MVUE is applied), P1's dense fine-tuning fraction, and P2 Table 8 (FP8 on/off).
 *
 * What it does: trains the same GPT-2 (same initial weights, same data order, same schedule) on
 * the Brown corpus once per variant and reports the final validation loss of each, with its
 * difference to the table's default variant:
 * - **β recipe** (P2 Table 2; SPEC 1.3): S-STE with `none` (β = 1), `l1`, `mse-frozen` (default)
 *   and `mse-dynamic` (recomputed every step).
 * - **MVUE placement** (P2 Table 3; SPEC 2.7–2.8): S-STE without MVUE, with MVUE on `∇Zᵀ` for the
 *   weight gradient only (default), and with MVUE also on `S(W)ᵀ` for the input gradient
 *   (`mvueOnWeight`).
 * - **dense fine-tune fraction** (P1; SPEC 2.5): T-SR-STE+DF with the last 0, 1/12, 1/6 (default)
 *   or 1/3 of the steps trained dense. A model whose last phase is dense is evaluated dense, the
 *   fraction-0 model with its transposable 2:4 weights.
 * - **FP8** (P2 Table 8; SPEC 2.9): S-STE against S-STE with simulated FP8 GEMM operands (the
 *   simulation quantises and dequantises, so it measures the accuracy cost, not a speed-up).
 * Runs shared between tables (the S-STE default is the default of three of them) are trained once.
 * The defaults of S-STE and of T-SR-STE+DF are also trained with the seeds `seed+1, …` (all of
 * initialisation, data order and MVUE draws change) so each table states a seed spread: a Δ
 * smaller than the spread is not distinguishable from noise.
 *
 * What to expect (SPEC §5): the frozen MSE β is best or tied, the dynamic β worse (P2 Table 2);
 * MVUE on `∇Z` costs little, MVUE also on `S(W)` costs a lot (P2 Table 3); some dense
 * fine-tuning helps over none, with 1/6 about as good as more (P1); FP8 costs little (P2 Table 8).
 * At this tiny scale many of these gaps are within the seed spread.
 *
 * Usage:
 *   deno run -A experiments/ablations.ts                        # the `cpu` preset, ~15 minutes
 *   deno run -A experiments/ablations.ts --tables=beta,fp8 --steps=100
 *   deno run -A experiments/ablations.ts --preset=gpu --backend=webgpu --resume
 *
 * Outputs (in `--out`, default `results/ablations`): `summary.json`, `table.md`, one validation
 * loss chart per table (`beta.svg`, `mvue.svg`, `dense_fraction.svg`, `fp8.svg`), and per-run
 * checkpoints under `checkpoints/` (for `--resume`).
 *
 * @module
 */

import { resolveSparseOptions, type SparseOptions } from "../core/sparse.ts";
import { writeSummary } from "./_summary.ts";
import { lineChart } from "./_plot.ts";
import { assertInt, assertOneOf, parseConfig, parseList, runCli } from "./_config.ts";
import { LM_GPU, LM_GPU_SCHEDULE, LM_RUN, STUDY_CPU, STUDY_TINY } from "./_lm_presets.ts";
import { checkLmConfig } from "./lm.ts";
import { LmExperiment, producedBy, type RunTotals, runTotals } from "./_lm_experiment.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "cpu", // cpu | cpu-tiny | gpu
  tables: "beta,mvue,dense-fraction,fp8", // which ablations to run
  ...STUDY_CPU, // the run of the studies: 2 layers × 128, 2,048 ids, batch 8, 200 steps
  ...LM_RUN,
  spreadSeeds: 2, // the tables' default runs are trained with this many seeds (seed, seed+1, …)
  out: "results/ablations",
  evalEvery: 40, // validation every this many steps (and at the end)
  alpha: 6e-5, // T-SR-STE+DF masked decay (P1's GPT-2 124M value)
  maskRefresh: 10, // T-SR-STE+DF transposable-mask refresh period
  denseFractions: "0,1/12,1/6,1/3", // P1 dense fine-tune fractions (1/6 is the default)
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  cpu: {}, // 13 runs of 200 steps (the time measured is in the committed table's header)
  "cpu-tiny": { ...STUDY_TINY, steps: 8, warmup: 2, evalEvery: 4, maskRefresh: 2 },
  gpu: { ...LM_GPU, ...LM_GPU_SCHEDULE, evalEvery: 100, evalBatches: 16, maskRefresh: 40 },
};

const TABLES = ["beta", "mvue", "dense-fraction", "fp8"] as const;
type TableName = typeof TABLES[number];

/** One row of an ablation table. */
interface Variant {
  name: string;
  sparse: SparseOptions;
}

/** An ablation: its title, its variants and which of them is the default. */
interface TableSpec {
  name: TableName;
  title: string;
  variants: Variant[];
  /** Index of the default variant in `variants`. */
  defaultIndex: number;
}

function parseFraction(text: string): number {
  const parts = text.trim().split("/");
  const v = parts.length === 2 ? Number(parts[0]) / Number(parts[1]) : Number(parts[0]);
  if (parts.length > 2 || parts.some((p) => p.trim() === "") || !(v >= 0 && v < 1)) {
    throw new TypeError(
      `Bad value for --denseFractions: expected fractions in [0, 1) like 1/6, got ${text}`,
    );
  }
  return v;
}

function tableSpecs(cfg: Config): TableSpec[] {
  const sste = (extra: Partial<SparseOptions> = {}): SparseOptions => ({
    method: "s-ste",
    ...extra,
  });
  const fractionTexts = parseList("denseFractions", cfg.denseFractions, (f) => f);
  const fractions = fractionTexts.map(parseFraction);
  const defaultFraction = fractions.findIndex((f) => f === 1 / 6);
  if (defaultFraction < 0) {
    throw new RangeError(
      `Bad value for --denseFractions: it must contain the default 1/6, got ${cfg.denseFractions}`,
    );
  }
  const all: TableSpec[] = [
    {
      name: "beta",
      title: "β recipe of S-STE (P2 Table 2)",
      variants: [
        { name: "none (β = 1)", sparse: sste({ betaRecipe: "none" }) },
        { name: "l1", sparse: sste({ betaRecipe: "l1" }) },
        { name: "mse-frozen (default)", sparse: sste() },
        { name: "mse-dynamic", sparse: sste({ betaRecipe: "mse-dynamic" }) },
      ],
      defaultIndex: 2,
    },
    {
      name: "mvue",
      title: "MVUE placement in S-STE (P2 Table 3)",
      variants: [
        { name: "no MVUE", sparse: sste({ mvue: false }) },
        { name: "MVUE on ∇Z (default)", sparse: sste() },
        { name: "MVUE on ∇Z and on S(W) for ∇X", sparse: sste({ mvueOnWeight: true }) },
      ],
      defaultIndex: 1,
    },
    {
      name: "dense-fraction",
      title: "Dense fine-tune fraction of T-SR-STE+DF (P1)",
      variants: fractions.map((f, i) => ({
        name: `${fractionTexts[i]}${i === defaultFraction ? " (default)" : ""}`,
        sparse: {
          method: "t-sr-ste+df",
          denseFraction: f,
          alpha: cfg.alpha,
          maskRefresh: cfg.maskRefresh,
        },
      })),
      defaultIndex: defaultFraction,
    },
    {
      name: "fp8",
      title: "FP8 on/off for S-STE (P2 Table 8)",
      variants: [
        { name: "S-STE, f32 GEMMs (default)", sparse: sste() },
        { name: "S-STE + FP8 (E4M3 fwd, E5M2 bwd)", sparse: { method: "s-ste+fp8" } },
      ],
      defaultIndex: 0,
    },
  ];
  const wanted = parseList("tables", cfg.tables, (t) => assertOneOf("tables", t, TABLES));
  return all.filter((t) => wanted.includes(t.name));
}

/** A run's identity: its resolved sparse options and seed (shared runs are trained once). */
function runKey(sparse: SparseOptions, seed: number): string {
  return `${JSON.stringify(resolveSparseOptions(sparse))}#${seed}`;
}

interface RunResult extends RunTotals {
  key: string;
  label: string;
  sparse: SparseOptions;
  seed: number;
  val_loss: number;
  evaluated: "dense" | "2:4";
  dense_steps: number;
}

/**
 * Runs the ablations with `--key=value` arguments and writes their outputs.
 *
 * @param args Command-line arguments (`--preset=`, `--tables=`, `--steps=`, `--out=`, …).
 * @returns The summary written to `summary.json`.
 * @throws {TypeError} On an unknown option or a value that does not parse.
 * @throws {RangeError} On a value out of range.
 */
export async function main(args: string[]): Promise<Record<string, unknown>> {
  // Every flag is validated before any work.
  const cfg = parseConfig(defaults, args, presets);
  assertInt("steps", cfg.steps, 2);
  assertInt("spreadSeeds", cfg.spreadSeeds, 1, 10);
  assertInt("evalEvery", cfg.evalEvery, 0);
  const tables = tableSpecs(cfg);
  checkLmConfig(cfg, tables.flatMap((t) => t.variants.map((v) => v.sparse)));

  // The distinct runs: every variant with the primary seed, every default with the extra seeds.
  const runs = new Map<string, { label: string; sparse: SparseOptions; seed: number }>();
  for (const t of tables) {
    for (const [i, v] of t.variants.entries()) {
      const seeds = i === t.defaultIndex ? cfg.spreadSeeds : 1;
      for (let k = 0; k < seeds; k++) {
        const seed = cfg.seed + k;
        const key = runKey(v.sparse, seed);
        if (!runs.has(key)) {
          const label = `${t.name}: ${v.name}${k > 0 ? ` #${seed}` : ""}`;
          runs.set(key, { label, sparse: v.sparse, seed });
        }
      }
    }
  }

  const experiment = await LmExperiment.open(cfg);

  const results = new Map<string, RunResult>();
  for (const [i, [key, run]] of [...runs.entries()].entries()) {
    experiment.announce({ done: i, total: runs.size, label: run.label });
    const file = `${run.label.replace(/[^a-z0-9#+-]+/gi, "_")}.safetensors`;
    const { trainer, log } = await experiment.train(cfg, {
      label: run.label,
      sparse: run.sparse,
      seed: run.seed,
      val: {
        batches: experiment.valBatches,
        every: cfg.evalEvery,
        dense: (t) => t.phase === "dense",
      },
      checkpoint: `${cfg.out}/checkpoints/${file}`,
      checkpointEvery: cfg.checkpointEvery,
      resume: cfg.resume,
      logEvery: 40,
    });
    const valLoss = log.val.at(-1)![1];
    const switchStep = trainer.denseSwitchStep;
    const result: RunResult = {
      key,
      label: run.label,
      sparse: run.sparse,
      seed: run.seed,
      val_loss: valLoss,
      evaluated: trainer.phase === "dense" ? "dense" : "2:4",
      dense_steps: switchStep === undefined ? 0 : cfg.steps - switchStep,
      ...runTotals(log),
    };
    results.set(key, result);
    console.log(
      `${run.label}: val loss ${valLoss.toFixed(4)} (evaluated ${result.evaluated}), ${
        result.tokens_per_s.toFixed(0)
      } tok/s`,
    );
  }

  const summary = await writeOutputs(cfg, tables, results, experiment);
  experiment.finish();
  return summary;
}

async function writeOutputs(
  cfg: Config,
  tables: TableSpec[],
  results: Map<string, RunResult>,
  experiment: LmExperiment,
): Promise<Record<string, unknown>> {
  const header = experiment.summaryHeader("ablations", cfg);
  const f4 = (v: number) => v.toFixed(4);
  const signed = (v: number) => `${v >= 0 ? "+" : ""}${v.toFixed(4)}`;
  const lines = [
    `# Ablations of the 2:4 methods (P2 Tables 2, 3, 8 and P1's dense fine-tuning; scaled down)`,
    ``,
    producedBy(cfg, {
      script: "ablations.ts",
      header,
      details: `peak LR ${cfg.lr}, warm-up ${cfg.warmup}`,
    }) + `. Same initial ` +
    `weights and data order in every run of seed ${cfg.seed}; validation loss on the same ` +
    `${cfg.evalBatches} held-out batches.`,
    ``,
  ];
  const tableSummaries: Record<string, unknown> = {};
  for (const t of tables) {
    const def = t.variants[t.defaultIndex];
    const defRun = results.get(runKey(def.sparse, cfg.seed))!;
    const seedRuns = Array.from(
      { length: cfg.spreadSeeds },
      (_, k) => results.get(runKey(def.sparse, cfg.seed + k))!,
    );
    const losses = seedRuns.map((r) => r.val_loss);
    const spread = seedRuns.length > 1 ? Math.max(...losses) - Math.min(...losses) : null;
    const rows = t.variants.map((v, i) => {
      const r = results.get(runKey(v.sparse, cfg.seed))!;
      return {
        variant: v.name,
        is_default: i === t.defaultIndex,
        sparse: resolveSparseOptions(v.sparse),
        val_loss: r.val_loss,
        val_ppl: Math.exp(r.val_loss),
        delta_vs_default: r.val_loss - defRun.val_loss,
        evaluated: r.evaluated,
        dense_steps: r.dense_steps,
        tokens_per_s: r.tokens_per_s,
        run: r.label,
      };
    });
    const isDf = t.name === "dense-fraction";
    lines.push(
      `## ${t.title}`,
      ``,
      `| variant | val loss | val ppl | Δ vs default |${
        isDf ? " dense steps |" : ""
      } evaluated | tokens/s |`,
      `|---|---|---|---|${isDf ? "---|" : ""}---|---|`,
      ...rows.map((r) =>
        `| ${r.variant} | ${f4(r.val_loss)} | ${r.val_ppl.toFixed(2)} | ${
          r.is_default ? "—" : signed(r.delta_vs_default)
        } |${isDf ? ` ${r.dense_steps} |` : ""} ${r.evaluated} | ${r.tokens_per_s.toFixed(0)} |`
      ),
      ``,
      spread === null
        ? `Seed spread: the default was trained with one seed only, so no spread is stated.`
        : `Seed spread: the default (${def.name.replace(" (default)", "")}) trained with ` +
          `seeds ${seedRuns.map((r) => r.seed).join(", ")} (initialisation, data order and ` +
          `MVUE draws all change) reaches ${losses.map(f4).join(", ")}, a spread of ` +
          `${f4(spread)}. The variants share seed ${cfg.seed}, so their Δ are paired ` +
          `comparisons, but a |Δ| below the spread is not a difference to rely on.`,
      ``,
    );
    tableSummaries[t.name] = {
      title: t.title,
      default: def.name,
      rows,
      seed_spread: {
        seeds: seedRuns.map((r) => r.seed),
        val_losses: losses,
        val_loss_range: spread,
      },
    };
    await Deno.writeTextFile(
      `${cfg.out}/${t.name === "dense-fraction" ? "dense_fraction" : t.name}.svg`,
      lineChart(
        [
          ...t.variants.map((v) => ({
            name: v.name,
            points: results.get(runKey(v.sparse, cfg.seed))!.log.val,
          })),
          ...seedRuns.slice(1).map((r) => ({
            name: `${def.name.replace(" (default)", "")} seed ${r.seed}`,
            points: r.log.val,
          })),
        ],
        { title: `${t.title}: validation loss`, xLabel: "optimizer steps", yLabel: "val loss" },
      ),
    );
  }
  const summary = {
    ...header,
    tables: tableSummaries,
    runs: Object.fromEntries(
      [...results.values()].map((r) => [r.label, {
        sparse: resolveSparseOptions(r.sparse),
        seed: r.seed,
        val_loss: r.val_loss,
        evaluated: r.evaluated,
        dense_steps: r.dense_steps,
        tokens_per_s: r.tokens_per_s,
        train_seconds: r.train_seconds,
        val_curve: r.log.val,
      }]),
    ),
  };
  await writeSummary(cfg.out, summary);
  await Deno.writeTextFile(`${cfg.out}/table.md`, lines.join("\n"));
  console.log(`\n${lines.join("\n")}`);
  console.log(`wrote ${cfg.out}/{summary.json,table.md,*.svg}`);
  return summary;
}

if (import.meta.main) await runCli(main);
