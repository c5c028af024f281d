/**
 * Ablations of the 2:4 methods — scaled-down reproductions of P2 Table 2 (the β recipe of S-STE),
 * P2 Table 3 (where MVUE is applied), P1's dense fine-tuning fraction, and P2 Table 8 (FP8 on/off).
 *
 * What it does: trains the same GPT-2 (same schedule) on the Brown corpus once per variant and
 * seed (`--seeds` seeds: seed, seed+1, …; a seed sets the initialisation, the data order and the
 * MVUE draws, so runs of one seed differ only in their variant) and reports each variant's final
 * validation loss, mean ± 95% t half-width over seeds, with its paired (by seed) difference to the
 * table's default variant and that difference's 95% interval:
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
 * Each paper claim is stated as a direction or a threshold on a paired difference and judged from
 * its interval (`_stats.ts`: agrees / disagrees / inconclusive); "costs little" and "about as good"
 * mean within {@linkcode LITTLE} of validation loss.
 *
 * What to expect (SPEC §5): the frozen MSE β is best or tied, the dynamic β worse (P2 Table 2);
 * MVUE on `∇Z` costs little, MVUE also on `S(W)` costs a lot (P2 Table 3); some dense
 * fine-tuning helps over none, with 1/6 about as good as more (P1); FP8 costs little (P2 Table 8).
 *
 * Usage:
 *   deno run -A experiments/ablations.ts                        # the `cpu` preset, 3 seeds
 *   deno run -A experiments/ablations.ts --tables=beta,fp8 --steps=100 --seeds=5
 *   deno run -A experiments/ablations.ts --preset=gpu --backend=webgpu --resume
 *
 * Outputs (in `--out`, default `results/ablations`), rewritten after every finished seed so a run
 * cut short keeps its finished seeds: `summary.json`, `table.md`, one validation loss chart per
 * table (`beta.svg`, `mvue.svg`, `dense_fraction.svg`, `fp8.svg`; mean over seeds), and per-run
 * checkpoints under `checkpoints/` (or `--checkpoints`; for `--resume`).
 *
 * @module
 */

import { resolveSparseOptions, type SparseOptions } from "../core/sparse.ts";
import { writeSummary } from "./_summary.ts";
import { lineChart } from "./_plot.ts";
import { meanCurve } from "./_flip_rate_measures.ts";
import { assertInt, assertOneOf, parseConfig, parseList, runCli } from "./_config.ts";
import { STUDY, STUDY_GPU, STUDY_TINY } from "./_lm_presets.ts";
import { checkLmConfig } from "./lm.ts";
import { LmExperiment, producedBy, type RunTotals, runTotals } from "./_lm_experiment.ts";
import {
  type Claim,
  claimRows,
  formatInterval,
  meanInterval,
  type PairedClaim,
  pairedClaim,
  pairedDifference,
  type SeededValue,
} from "./_stats.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  ...STUDY, // the `cpu` preset's run (2 layers × 128, 2,048 ids, batch 8, 200 steps), 3 seeds
  tables: "beta,mvue,dense-fraction,fp8", // which ablations to run
  out: "results/ablations",
  evalEvery: 40, // validation every this many steps (and at the end)
  alpha: 6e-5, // T-SR-STE+DF masked decay (P1's GPT-2 124M value)
  maskRefresh: 10, // T-SR-STE+DF transposable-mask refresh period
  denseFractions: "0,1/12,1/6,1/3", // P1 dense fine-tune fractions (1/6 is the default)
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  cpu: {}, // 11 variants × 3 seeds of 200 steps (the time measured is in the table's header)
  "cpu-tiny": { ...STUDY_TINY, steps: 8, warmup: 2, evalEvery: 4, maskRefresh: 2, seeds: 2 },
  gpu: { ...STUDY_GPU, evalEvery: 100, maskRefresh: 40 },
};

/** "Costs little" / "about as good": a validation-loss difference within this much. */
export const LITTLE = 0.02;

const TABLES = ["beta", "mvue", "dense-fraction", "fp8"] as const;
type TableName = typeof TABLES[number];

/** One row of an ablation table. */
interface Variant {
  name: string;
  sparse: SparseOptions;
}

/** A paper's claim about two variants of a table: `a − b` of the validation loss meets `test`. */
interface ClaimSpec {
  claim: string;
  a: string;
  b: string;
  test: Claim;
}

/** An ablation: its title, its variants, which of them is the default, and the claims on them. */
interface TableSpec {
  name: TableName;
  title: string;
  variants: Variant[];
  /** Index of the default variant in `variants`. */
  defaultIndex: number;
  claims: ClaimSpec[];
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
  const fractionName = (i: number) =>
    `${fractionTexts[i]}${i === defaultFraction ? " (default)" : ""}`;
  const fractionOf = (v: number) => fractions.findIndex((f) => f === v);
  const little = LITTLE.toFixed(2);
  const fractionClaims: ClaimSpec[] = [
    ...(fractionOf(0) >= 0
      ? [{
        claim: "some dense fine-tuning helps: 1/6 dense ends below none (< 0)",
        a: fractionName(defaultFraction),
        b: fractionName(fractionOf(0)),
        test: { kind: "below" } as Claim,
      }]
      : []),
    ...(fractionOf(1 / 3) >= 0
      ? [{
        claim: `1/6 is about as good as more: 1/3 dense within ±${little} of 1/6`,
        a: fractionName(fractionOf(1 / 3)),
        b: fractionName(defaultFraction),
        test: { kind: "within", margin: LITTLE } as Claim,
      }]
      : []),
  ];
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
      claims: [
        {
          claim: "no scale (β = 1) trains worse than the frozen MSE β (> 0)",
          a: "none (β = 1)",
          b: "mse-frozen (default)",
          test: { kind: "above" },
        },
        {
          claim: `the frozen MSE β is best or tied: l1 is not better by more than ${little}`,
          a: "l1",
          b: "mse-frozen (default)",
          test: { kind: "above", bound: -LITTLE },
        },
        {
          claim: "the dynamic β trains worse than the frozen one (> 0)",
          a: "mse-dynamic",
          b: "mse-frozen (default)",
          test: { kind: "above" },
        },
      ],
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
      claims: [
        {
          claim: `MVUE on ∇Z costs little: ≤ ${little} over no MVUE`,
          a: "MVUE on ∇Z (default)",
          b: "no MVUE",
          test: { kind: "below", bound: LITTLE },
        },
        {
          claim: `MVUE also on S(W) costs a lot: > ${little} over MVUE on ∇Z only`,
          a: "MVUE on ∇Z and on S(W) for ∇X",
          b: "MVUE on ∇Z (default)",
          test: { kind: "above", bound: LITTLE },
        },
      ],
    },
    {
      name: "dense-fraction",
      title: "Dense fine-tune fraction of T-SR-STE+DF (P1)",
      variants: fractions.map((f, i) => ({
        name: fractionName(i),
        sparse: {
          method: "t-sr-ste+df",
          denseFraction: f,
          alpha: cfg.alpha,
          maskRefresh: cfg.maskRefresh,
        },
      })),
      defaultIndex: defaultFraction,
      claims: fractionClaims,
    },
    {
      name: "fp8",
      title: "FP8 on/off for S-STE (P2 Table 8)",
      variants: [
        { name: "S-STE, f32 GEMMs (default)", sparse: sste() },
        { name: "S-STE + FP8 (E4M3 fwd, E5M2 bwd)", sparse: { method: "s-ste+fp8" } },
      ],
      defaultIndex: 0,
      claims: [{
        claim: `FP8 costs S-STE little: ≤ ${little} val loss`,
        a: "S-STE + FP8 (E4M3 fwd, E5M2 bwd)",
        b: "S-STE, f32 GEMMs (default)",
        test: { kind: "below", bound: LITTLE },
      }],
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
 * @param args Command-line arguments (`--preset=`, `--tables=`, `--steps=`, `--seeds=`, `--out=`, …).
 * @returns The summary written to `summary.json`.
 * @throws {TypeError} On an unknown option or a value that does not parse.
 * @throws {RangeError} On a value out of range.
 */
export async function main(args: string[]): Promise<Record<string, unknown>> {
  // Every flag is validated before any work.
  const cfg = parseConfig(defaults, args, presets);
  assertInt("steps", cfg.steps, 2);
  assertInt("seeds", cfg.seeds, 1, 30);
  assertInt("evalEvery", cfg.evalEvery, 0);
  const tables = tableSpecs(cfg);
  checkLmConfig(cfg, tables.flatMap((t) => t.variants.map((v) => v.sparse)));

  // The distinct variants (shared ones once), each trained with every seed.
  const variants = new Map<string, { label: string; sparse: SparseOptions }>();
  for (const t of tables) {
    for (const v of t.variants) {
      const key = runKey(v.sparse, 0);
      if (!variants.has(key)) {
        variants.set(key, { label: `${t.name}: ${v.name}`, sparse: v.sparse });
      }
    }
  }
  const seeds = Array.from({ length: cfg.seeds }, (_, k) => cfg.seed + k);
  const experiment = await LmExperiment.open(cfg, { checkpoints: false });
  const checkpoints = cfg.checkpoints || `${cfg.out}/checkpoints`;
  await Deno.mkdir(checkpoints, { recursive: true });
  console.log(`${variants.size} variants × ${seeds.length} seeds, ${cfg.steps} steps each`);

  const results = new Map<string, RunResult>();
  let summary: Record<string, unknown> = {};
  // Seed by seed: the outputs are rewritten after every seed, so a run cut short keeps them.
  for (const [k, seed] of seeds.entries()) {
    for (const [i, run] of [...variants.values()].entries()) {
      const label = `${run.label} #${seed}`;
      experiment.announce({
        done: k * variants.size + i,
        total: seeds.length * variants.size,
        label,
      });
      const file = `${label.replace(/[^a-z0-9#+-]+/gi, "_")}.safetensors`;
      const { trainer, log } = await experiment.train(cfg, {
        label,
        sparse: run.sparse,
        seed,
        val: {
          batches: experiment.valBatches,
          every: cfg.evalEvery,
          dense: (t) => t.phase === "dense",
        },
        checkpoint: `${checkpoints}/${file}`,
        checkpointEvery: cfg.checkpointEvery,
        resume: cfg.resume,
        logEvery: 40,
      });
      const valLoss = log.val.at(-1)![1];
      const switchStep = trainer.denseSwitchStep;
      const result: RunResult = {
        key: runKey(run.sparse, seed),
        label,
        sparse: run.sparse,
        seed,
        val_loss: valLoss,
        evaluated: trainer.phase === "dense" ? "dense" : "2:4",
        dense_steps: switchStep === undefined ? 0 : cfg.steps - switchStep,
        ...runTotals(log),
      };
      results.set(result.key, result);
      console.log(
        `${label}: val loss ${valLoss.toFixed(4)} (evaluated ${result.evaluated}), ${
          result.tokens_per_s.toFixed(0)
        } tok/s`,
      );
    }
    summary = await writeOutputs(cfg, tables, results, seeds.slice(0, k + 1), experiment);
  }
  experiment.finish();
  return summary;
}

async function writeOutputs(
  cfg: Config,
  tables: TableSpec[],
  results: Map<string, RunResult>,
  seeds: number[],
  experiment: LmExperiment,
): Promise<Record<string, unknown>> {
  const header = experiment.summaryHeader("ablations", cfg);
  const runsOf = (v: Variant) => seeds.map((seed) => results.get(runKey(v.sparse, seed))!);
  const losses = (v: Variant): SeededValue[] =>
    runsOf(v).map((r) => ({ seed: r.seed, value: r.val_loss }));
  const meanCell = (v: Variant) =>
    formatInterval(meanInterval(losses(v).map((x) => x.value)), { digits: 4 });
  const diffCell = (v: Variant, def: Variant) =>
    formatInterval(
      pairedDifference(losses(v).map((x) => x.value), losses(def).map((x) => x.value)),
      { digits: 4, bracket: true, signed: true },
    );
  const signed = (v: number) => `${v >= 0 ? "+" : ""}${v.toFixed(4)}`;
  const lines = [
    `# Ablations of the 2:4 methods (P2 Tables 2, 3, 8 and P1's dense fine-tuning; scaled down)`,
    ``,
    producedBy(cfg, {
      script: "ablations.ts",
      header,
      details: `peak LR ${cfg.lr}, warm-up ${cfg.warmup}`,
    }) + `, ${header.wall_seconds.toFixed(0)} s; ${seeds.length} seeds per variant ` +
    `(${seeds.join(", ")}); validation loss on the same ${cfg.evalBatches} held-out batches.`,
    ``,
    `Val loss: mean ± the half-width of the 95% Student-t interval over seeds. Δ: the paired ` +
    `difference against the table's default of the same seed (same initial weights and data ` +
    `order), mean [95% interval]. A claim *agrees* when the whole interval of its difference ` +
    `satisfies it, *disagrees* when the whole interval contradicts it, else it is ` +
    `*inconclusive*; "little" is ±${LITTLE} of validation loss.`,
    ``,
  ];
  const tableSummaries: Record<string, unknown> = {};
  const byName = (t: TableSpec, name: string) => t.variants.find((v) => v.name === name)!;
  for (const t of tables) {
    const def = t.variants[t.defaultIndex];
    const rows = t.variants.map((v, i) => {
      const runs = runsOf(v);
      const values = runs.map((r) => r.val_loss);
      return {
        variant: v.name,
        is_default: i === t.defaultIndex,
        sparse: resolveSparseOptions(v.sparse),
        seeds: runs.map((r) => r.seed),
        val_losses: values,
        val_loss: meanInterval(values),
        delta_vs_default: i === t.defaultIndex
          ? null
          : pairedDifference(values, runsOf(def).map((r) => r.val_loss)),
        evaluated: runs[0].evaluated,
        dense_steps: runs[0].dense_steps,
        tokens_per_s: runs.reduce((a, r) => a + r.tokens_per_s, 0) / runs.length,
      };
    });
    const claims: (PairedClaim & { test: Claim })[] = t.claims.map((c) => ({
      ...pairedClaim(losses(byName(t, c.a)), losses(byName(t, c.b)), c.test, {
        claim: c.claim,
        difference: `${c.a.replace(" (default)", "")} − ${c.b.replace(" (default)", "")}`,
      }),
      test: c.test,
    }));
    const isDf = t.name === "dense-fraction";
    lines.push(
      `## ${t.title}`,
      ``,
      `| variant | val loss | Δ vs default [95% CI] |${
        isDf ? " dense steps |" : ""
      } evaluated | tokens/s |`,
      `|---|---|---|${isDf ? "---|" : ""}---|---|`,
      ...t.variants.map((v, i) =>
        `| ${v.name} | ${meanCell(v)} | ${i === t.defaultIndex ? "—" : diffCell(v, def)} |${
          isDf ? ` ${rows[i].dense_steps} |` : ""
        } ${rows[i].evaluated} | ${rows[i].tokens_per_s.toFixed(0)} |`
      ),
      ``,
      ...(claims.length > 0 ? [...claimRows(claims, signed), ``] : []),
    );
    tableSummaries[t.name] = { title: t.title, default: def.name, rows, claims };
    await Deno.writeTextFile(
      `${cfg.out}/${t.name === "dense-fraction" ? "dense_fraction" : t.name}.svg`,
      lineChart(
        t.variants.map((v) => ({
          name: v.name,
          points: meanCurve(runsOf(v).map((r) => r.log.val)),
        })),
        {
          title: `${t.title}: validation loss (mean of ${seeds.length} seeds)`,
          xLabel: "optimizer steps",
          yLabel: "val loss",
        },
      ),
    );
  }
  const summary = {
    ...header,
    seeds,
    tables: tableSummaries,
    runs: Object.fromEntries(
      [...results.values()].filter((r) => seeds.includes(r.seed)).map((r) => [r.label, {
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
