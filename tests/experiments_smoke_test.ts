/**
 * Smoke runs of the experiments (`experiments/gpt2.ts`, `flip_rate.ts`, `alpha_select.ts`,
 * `ablations.ts` with their `cpu-tiny` presets on the reference backend; `seq2seq.ts` with its
 * `smoke` preset; the P2 mechanism figures `p2_discontinuity.ts`, `p2_beta.ts`, `p2_finetune.ts`
 * with their `tiny` presets; `vit.ts` with its `tiny` preset on generated Fashion-MNIST-shaped IDX
 * files): every output file is written, the summaries have the expected keys
 * and finite numbers, and the flip rates obey the relations the scripts rely on.
 *
 * @module
 */

import { main as flipRateMain } from "../experiments/flip_rate.ts";
import { main as ablationsMain } from "../experiments/ablations.ts";
import { main as seq2seqMain } from "../experiments/seq2seq.ts";
import { SPARSE_METHODS } from "../core/sparse.ts";
import { main as alphaSelectMain } from "../experiments/alpha_select.ts";
import { main as discontinuityMain } from "../experiments/p2_discontinuity.ts";
import { main as betaMain } from "../experiments/p2_beta.ts";
import { main as finetuneMain } from "../experiments/p2_finetune.ts";
import { main as vitMain } from "../experiments/vit.ts";
import { DataCacheError, encodeIdx, FASHION_MNIST_IDX_NAMES } from "../core/data/mod.ts";
import { assert as check } from "../reference/testing.ts";

const DATA = new URL("../data/brown", import.meta.url).pathname;
const GPT2 = new URL("../experiments/gpt2.ts", import.meta.url).pathname;

function checkFinite(value: unknown, what: string): void {
  check(
    typeof value === "number" && Number.isFinite(value),
    `${what} should be a finite number, got ${value}`,
  );
}

async function checkFiles(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    const info = await Deno.stat(`${dir}/${name}`);
    check(info.isFile && info.size > 0, `${dir}/${name} should be a non-empty file`);
  }
}

/** Runs `fn` with `console.log` silenced (the scripts print progress). */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = () => {};
  try {
    return await fn();
  } finally {
    console.log = log;
  }
}

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test("gpt2.ts runs its cpu-tiny preset and writes its outputs", async () => {
  const out = await Deno.makeTempDir({ prefix: "twofour_gpt2_" });
  try {
    const result = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        GPT2,
        "--preset=cpu-tiny",
        "--backend=reference",
        `--out=${out}`,
        `--data=${DATA}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(result.stderr);
    check(result.code === 0, `gpt2.ts exited with ${result.code}: ${stderr}`);
    await checkFiles(out, [
      "summary.json",
      "table.md",
      "loss.svg",
      "val_loss.svg",
      "flip_rate.svg",
    ]);
    const summary: Json = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
    check(summary.experiment === "gpt2", `unexpected experiment ${summary.experiment}`);
    const expected = ["dense", "ste", "sr-ste", "t-sr-ste", "t-sr-ste+df", "s-ste", "s-ste+fp8"];
    check(
      JSON.stringify(Object.keys(summary.methods)) === JSON.stringify(expected),
      `unexpected methods ${Object.keys(summary.methods)}`,
    );
    // cpu-tiny trains every method with two seeds: 14 runs, an interval for every metric.
    check(Object.keys(summary.runs).length === 14, `${Object.keys(summary.runs).length} runs`);
    for (const [name, m] of Object.entries(summary.methods) as [string, Json][]) {
      for (const metric of ["val_loss", "pos_acc", "finetune_acc"]) {
        const iv = m[metric].interval;
        check(m[metric].values.length === 2, `${name} ${metric}: two seeds`);
        check(
          iv.low <= iv.mean && iv.mean <= iv.high,
          `${name} ${metric} interval ${iv.low}..${iv.high}`,
        );
      }
      for (const metric of ["pos_acc", "finetune_acc"]) {
        for (const { value } of m[metric].values) {
          check(value >= 0 && value <= 1, `${name} ${metric} ${value} out of [0, 1]`);
        }
      }
      if (name !== "dense") checkFinite(m.val_loss.difference_vs_dense.interval.mean, `${name} Δ`);
    }
    check(summary.claims.length === 10, `${summary.claims.length} claims`);
    for (const c of summary.claims) {
      check(["agrees", "disagrees", "inconclusive"].includes(c.verdict), `verdict ${c.verdict}`);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("flip_rate.ts runs its cpu-tiny preset and writes its outputs", async () => {
  const out = await Deno.makeTempDir({ prefix: "twofour_flip_" });
  try {
    const summary: Json = await quietly(() =>
      flipRateMain(["--preset=cpu-tiny", "--backend=reference", `--out=${out}`, `--data=${DATA}`])
    );
    await checkFiles(out, [
      "summary.json",
      "table.md",
      "flip_rate.svg",
      "methods.svg",
      "alpha_sweep.svg",
      "alpha_sweep_mask.svg",
      "decay_placement.svg",
      "beta.svg",
    ]);
    const written: Json = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
    check(written.experiment === "flip_rate", `unexpected experiment ${written.experiment}`);
    const runs = written.runs;
    const ids = [
      "dense",
      "ste",
      "sr-ste (decay on gradient)",
      "sr-ste (decay on weight)",
      "t-sr-ste α=0",
      "t-sr-ste α=6e-5",
      "s-ste (frozen β)",
      "s-ste (dynamic β)",
    ];
    // Every run with each of the preset's two seeds, seed by seed.
    const expected = [1, 2].flatMap((seed) => ids.map((id) => `${id} #${seed}`));
    check(
      JSON.stringify(Object.keys(runs)) === JSON.stringify(expected),
      `unexpected runs ${Object.keys(runs)}`,
    );
    // Every claim is judged from a two-seed interval of a paired difference.
    check(written.claims.length === 6, `${written.claims.length} claims`);
    for (const c of written.claims) {
      check(c.differences.length === 2, `${c.claim}: ${c.differences.length} pairs`);
      checkFinite(c.interval.halfWidth, `${c.claim} half-width`);
      check(["agrees", "disagrees", "inconclusive"].includes(c.verdict), `verdict ${c.verdict}`);
    }
    const table = await Deno.readTextFile(`${out}/table.md`);
    check(table.includes("| claim (paired by seed) |"), "table.md lacks the claims");
    const steps = written.config.steps;
    for (const [id, r] of Object.entries(runs) as [string, Json][]) {
      checkFinite(r.val_loss, `${id} val_loss`);
      for (const key of ["first_third", "last_third", "max", "final"]) {
        checkFinite(r.hard_flip_rate[key], `${id} hard_flip_rate.${key}`);
        checkFinite(r.mask_flip_rate[key], `${id} mask_flip_rate.${key}`);
      }
      // The first measurement only stores the mask: one point per step after the first.
      check(r.hard_curve.length === steps - 1, `${id}: ${r.hard_curve.length} hard points`);
      for (const [, y] of r.hard_curve) check(y >= 0 && y <= 1, `${id}: flip rate ${y}`);
    }
    // For a method that tracks the hard mask every step, the per-step measurement after step s is
    // the trainer's flip count at the start of step s + 1: the same masks, the same number.
    for (const id of ["dense #1", "ste #2", "s-ste (frozen β) #1"]) {
      const mask = new Map<number, number>(runs[id].mask_curve);
      let compared = 0;
      for (const [x, y] of runs[id].hard_curve) {
        if (mask.has(x)) {
          check(mask.get(x) === y, `${id}: hard flip ${y} != trainer flip ${mask.get(x)} at ${x}`);
          compared++;
        }
      }
      check(compared === steps - 2, `${id}: compared ${compared} points`);
    }
    // T-SR-STE refreshes its transposable mask every maskRefresh steps: flips only there.
    const refresh = written.config.maskRefresh;
    const tsr = runs["t-sr-ste α=6e-5 #2"];
    check(tsr.mask_flip_rate.per === "refresh", "T-SR-STE's mask flip rate should be per refresh");
    check(
      tsr.mask_curve.length > 0 && tsr.mask_curve.every(([x]: number[]) => x % refresh === 0),
      `T-SR-STE mask flips off the refresh steps: ${tsr.mask_curve.map((p: number[]) => p[0])}`,
    );
    check(JSON.stringify(summary.runs) === JSON.stringify(written.runs), "returned summary");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("ablations.ts runs its cpu-tiny preset and writes one table per ablation", async () => {
  const out = await Deno.makeTempDir({ prefix: "twofour_ablations_" });
  try {
    await quietly(() =>
      ablationsMain(["--preset=cpu-tiny", "--backend=reference", `--out=${out}`, `--data=${DATA}`])
    );
    await checkFiles(out, [
      "summary.json",
      "table.md",
      "beta.svg",
      "mvue.svg",
      "dense_fraction.svg",
      "fp8.svg",
    ]);
    const summary: Json = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
    check(summary.experiment === "ablations", `unexpected experiment ${summary.experiment}`);
    const rowsExpected: Record<string, number> = {
      beta: 4,
      mvue: 3,
      "dense-fraction": 4,
      fp8: 2,
    };
    check(
      JSON.stringify(Object.keys(summary.tables)) === JSON.stringify(Object.keys(rowsExpected)),
      `unexpected tables ${Object.keys(summary.tables)}`,
    );
    const claimsExpected: Record<string, number> = {
      beta: 3,
      mvue: 2,
      "dense-fraction": 2,
      fp8: 1,
    };
    for (const [name, t] of Object.entries(summary.tables) as [string, Json][]) {
      check(t.rows.length === rowsExpected[name], `${name}: ${t.rows.length} rows`);
      check(t.rows.filter((r: Json) => r.is_default).length === 1, `${name}: one default`);
      for (const r of t.rows) {
        // Every variant, the default included, with the preset's two seeds.
        check(JSON.stringify(r.seeds) === "[1,2]", `${name}/${r.variant} seeds ${r.seeds}`);
        checkFinite(r.val_loss.halfWidth, `${name}/${r.variant} val_loss interval`);
        if (r.is_default) check(r.delta_vs_default === null, `${name}: default has a Δ`);
        else checkFinite(r.delta_vs_default.halfWidth, `${name}/${r.variant} Δ interval`);
      }
      check(t.claims.length === claimsExpected[name], `${name}: ${t.claims.length} claims`);
      for (const c of t.claims) {
        check(c.differences.length === 2, `${name}: ${c.claim}: ${c.differences.length} pairs`);
        check(["agrees", "disagrees", "inconclusive"].includes(c.verdict), `verdict ${c.verdict}`);
      }
    }
    // The dense fraction decides the phase the model ends in, and so how it is evaluated.
    const df = summary.tables["dense-fraction"].rows;
    check(df[0].dense_steps === 0 && df[0].evaluated === "2:4", "fraction 0 stays sparse");
    check(df[3].dense_steps > 0 && df[3].evaluated === "dense", "fraction 1/3 ends dense");
    // Shared runs are trained once: 4 + 2 + 4 + 1 variants, each with two seeds.
    check(Object.keys(summary.runs).length === 22, `${Object.keys(summary.runs).length} runs`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("seq2seq.ts runs its smoke preset: every method, two seeds, paired against dense; --resume reuses runs", async () => {
  const out = await Deno.makeTempDir({ prefix: "twofour_seq2seq_" });
  try {
    const args = ["--preset=smoke", "--backend=reference", `--out=${out}`, `--data=${DATA}`];
    // One seed of two methods first: means without intervals, never "± NaN".
    const first: Json = await quietly(() =>
      seq2seqMain([...args, "--methods=dense,s-ste", "--seeds=1"])
    );
    const single = await Deno.readTextFile(`${out}/table.md`);
    check(!single.includes("NaN") && single.includes("(n = 1)"), `one-seed table:\n${single}`);
    // The full smoke run with --resume trains the other runs and reuses those two unchanged.
    const summary: Json = await quietly(() => seq2seqMain([...args, "--resume"]));
    await checkFiles(out, ["summary.json", "table.md", "bleu.svg", "loss.svg"]);
    check(summary.runs.length === 2 * SPARSE_METHODS.length, `${summary.runs.length} runs`);
    for (const r of first.runs as Json[]) {
      const again = summary.runs.find((x: Json) => x.method === r.method && x.seed === r.seed);
      check(JSON.stringify(again) === JSON.stringify(r), `${r.method} seed ${r.seed} not reused`);
    }
    for (const r of summary.runs) {
      for (const key of ["bleu", "tagAccuracy"]) {
        check(r[key] >= 0 && r[key] <= 100, `${r.method} seed ${r.seed}: ${key} ${r[key]}`);
      }
      checkFinite(r.valLoss, `${r.method} valLoss`);
    }
    const table = await Deno.readTextFile(`${out}/table.md`);
    for (const m of SPARSE_METHODS) {
      check(table.includes(`| ${m} |`), `table row of ${m}`);
      const paired = summary.bleu[m].vsDense;
      check((m === "dense") === (paired === undefined), `${m}: paired difference`);
      if (paired) checkFinite(paired.halfWidth, `${m}: paired half-width`);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("vit.ts runs its tiny preset on generated IDX files and writes its outputs", async () => {
  const root = await Deno.makeTempDir({ prefix: "twofour_vit_" });
  try {
    // 24 training and 16 test images of 28×28: a bright square whose corner is the label's.
    for (const [split, n] of [["train", 24], ["test", 16]] as const) {
      const labels = Uint8Array.from({ length: n }, (_, i) => i % 4);
      const images = new Uint8Array(n * 784);
      labels.forEach((label, i) => {
        const top = label < 2 ? 0 : 14, left = label % 2 === 0 ? 0 : 14;
        for (let r = 0; r < 14; r++) {
          images.fill(220, i * 784 + (top + r) * 28 + left, i * 784 + (top + r) * 28 + left + 14);
        }
      });
      const [imageName, labelName] = FASHION_MNIST_IDX_NAMES[split];
      await Deno.mkdir(`${root}/idx`, { recursive: true });
      await Deno.writeFile(`${root}/idx/${imageName}`, encodeIdx([n, 28, 28], images));
      await Deno.writeFile(`${root}/idx/${labelName}`, encodeIdx([n], labels));
    }
    const args = [
      "--preset=tiny",
      "--backend=reference",
      `--source=${root}/idx`,
      `--data=${root}/cache`,
      `--out=${root}/out`,
    ];
    await quietly(() => vitMain([...args, "--factorial=true", "--methods=dense,s-ste"]));
    await checkFiles(`${root}/out`, ["summary.json", "table.md", "loss.svg", "factorial.svg"]);
    // The tiny preset has one seed: means without intervals, never "± NaN".
    const table = await Deno.readTextFile(`${root}/out/table.md`);
    check(!table.includes("NaN") && table.includes("(n = 1)"), `one-seed table:\n${table}`);
    const summary: Json = JSON.parse(await Deno.readTextFile(`${root}/out/summary.json`));
    check(
      summary.methods.map((m: Json) => m.method).join() === "dense,s-ste",
      `unexpected methods ${summary.methods.map((m: Json) => m.method)}`,
    );
    check(
      summary.factorial.length === 16,
      `expected 16 factorial cells, got ${summary.factorial.length}`,
    );
    // dense, s-ste (= one cell) and the 11 other distinct cells (4 hard+β cells are their twins).
    check(summary.runs.length === 13, `expected 13 runs, got ${summary.runs.length}`);
    for (const r of summary.runs as Json[]) {
      checkFinite(r.accuracy, `${r.label} accuracy`);
      check(r.accuracy >= 0 && r.accuracy <= 100, `${r.label} accuracy out of [0, 100]`);
    }
    for (const name of ["soft", "beta", "mvue", "fp8"]) {
      checkFinite(summary.effects[name].mean, name);
    }
    // Without the package's files and without a cache: one error naming the package.
    let message = "";
    try {
      await quietly(() =>
        vitMain([
          ...args.slice(0, 2),
          `--source=${root}/none`,
          `--data=${root}/none`,
          `--out=${root}/out2`,
        ])
      );
    } catch (e) {
      if (e instanceof DataCacheError) message = e.message;
    }
    check(message.includes("dataset-fashion-mnist"), `unexpected error "${message}"`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("alpha_select.ts runs its cpu-tiny preset and selects the smallest α healthy in every seed", async () => {
  const out = await Deno.makeTempDir({ prefix: "twofour_alpha_" });
  try {
    const summary: Json = await quietly(() =>
      alphaSelectMain([
        "--preset=cpu-tiny",
        "--backend=reference",
        `--out=${out}`,
        `--data=${DATA}`,
      ])
    );
    await checkFiles(out, ["summary.json", "table.md", "ratio.svg"]);
    const written: Json = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
    check(JSON.stringify(written.judgements) === JSON.stringify(summary.judgements), "summary");
    const alphas = [0, 0.1], seeds = [1, 2];
    check(written.judgements.length === alphas.length * seeds.length, "one judgement a probe");
    for (const j of written.judgements) {
      checkFinite(j.flip_rate, `α=${j.alpha} flip rate`);
      checkFinite(j.bound, `α=${j.alpha} bound`);
      check(j.bound > 0, `the dense run's transposable flip rate should be > 0, got ${j.bound}`);
      check(j.healthy === (j.below_bound && !j.rising), `α=${j.alpha} verdict`);
    }
    // Every run measured its own transposable mask after every step but the first.
    for (const c of written.curves) {
      check(c.curve.length === written.config.probeSteps - 1, `${c.curve.length} points`);
    }
    const healthyEverywhere = alphas.filter((a) =>
      written.judgements.filter((j: Json) => j.alpha === a).every((j: Json) => j.healthy)
    );
    const expected = healthyEverywhere.length > 0 ? healthyEverywhere[0] : alphas.at(-1);
    check(written.selected_alpha === expected, `selected ${written.selected_alpha}`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("p2_discontinuity.ts, p2_beta.ts and p2_finetune.ts run their tiny presets", async () => {
  const out = await Deno.makeTempDir({ prefix: "twofour_p2_" });
  try {
    const disc: Json = await quietly(() =>
      discontinuityMain(["--preset=tiny", `--out=${out}/disc`])
    );
    await checkFiles(`${out}/disc`, [
      "summary.json",
      "table.md",
      "fig1_hard.svg",
      "fig1_soft.svg",
      "fig2.svg",
    ]);
    check(disc.runs.length === 4, `2 seeds × 2 kinds, got ${disc.runs.length}`);
    for (const r of disc.runs) {
      for (const key of ["mask_share", "prediction_error", "prediction_error_frozen"]) {
        checkFinite(r[key], `${r.kind} ${key}`);
      }
    }
    for (const v of disc.verdicts) {
      check(["agrees", "disagrees", "inconclusive"].includes(v.verdict), `verdict ${v.verdict}`);
    }
    const beta: Json = await quietly(() => betaMain(["--preset=tiny", `--out=${out}/beta`]));
    await checkFiles(`${out}/beta`, [
      "summary.json",
      "table.md",
      "beta_sweep.svg",
      "beta_per_step.svg",
    ]);
    // The frozen β never moves; the constants are what they say.
    const frozen = beta.beta_per_step_first_seed["mse-frozen"];
    check(frozen.every((b: number[]) => b[0] === frozen[0][0]), "the frozen β moved");
    for (const r of beta.runs.filter((r: Json) => r.recipe === "β=2")) {
      check(r.beta_last.every((b: number) => b === 2), `constant β became ${r.beta_last}`);
    }
    const ft: Json = await quietly(() => finetuneMain(["--preset=tiny", `--out=${out}/ft`]));
    await checkFiles(`${out}/ft`, ["summary.json", "table.md", "finetune.svg"]);
    check(ft.cells.length === 8, `2 seeds × 2 × 2 cells, got ${ft.cells.length}`);
    for (const c of ft.cells) checkFinite(c.test_loss, `${c.pretrain}→${c.finetune} loss`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
