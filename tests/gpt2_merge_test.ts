/**
 * `gpt2.ts` runs split across processes (`--methods`, `--seed`, `--seeds`) and combined by
 * `--merge` make the table one process makes; `--merge` refuses runs of another configuration or
 * a run twice; `--alphaFrom` trains T-SR-STE with the α an `alpha_select.ts` summary selected; a
 * claim whose metric was not measured (genre without fine-tuning) gets no row.
 *
 * @module
 */

import { main as gpt2Main } from "../experiments/gpt2.ts";
import { assert } from "../reference/testing.ts";

const DATA = new URL("../data/brown", import.meta.url).pathname;
// Two methods, no downstream task: seconds per run on the reference backend.
const BASE = [
  "--preset=cpu-tiny",
  "--backend=reference",
  "--pos=false",
  "--genre=false",
  "--evalEvery=2",
  `--data=${DATA}`,
];
const TINY = [...BASE, "--methods=dense,s-ste", "--steps=4"];

/** Runs `gpt2Main` with `console.log` silenced; returns the error it threw, if any. */
async function quietly(args: string[]): Promise<unknown> {
  const log = console.log;
  console.log = () => {};
  try {
    await gpt2Main(args);
  } catch (error) {
    return error;
  } finally {
    console.log = log;
  }
}

// deno-lint-ignore no-explicit-any
const readJson = async (path: string): Promise<any> => JSON.parse(await Deno.readTextFile(path));

Deno.test("gpt2.ts --merge of runs from separate processes makes one process's table", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twofour_merge_" });
  try {
    for (
      const [name, args] of [
        ["whole", ["--seeds=2"]],
        ["seed1", ["--seed=1", "--seeds=1"]],
        ["seed2", ["--seed=2", "--seeds=1"]],
      ] as const
    ) {
      const error = await quietly([...TINY, ...args, `--out=${dir}/${name}`]);
      if (error) throw error;
    }
    const error = await quietly([...TINY, `--merge=${dir}/seed2,${dir}/seed1`, `--out=${dir}/m`]);
    if (error) throw error;
    const whole = await readJson(`${dir}/whole/summary.json`);
    const merged = await readJson(`${dir}/m/summary.json`);
    assert(
      JSON.stringify(merged.methods) === JSON.stringify(whole.methods),
      "the merged per-method statistics should equal those of one process",
    );
    assert(
      JSON.stringify(merged.claims) === JSON.stringify(whole.claims),
      "the merged claims should equal those of one process",
    );
    assert(
      JSON.stringify(Object.keys(merged.runs)) === JSON.stringify(Object.keys(whole.runs)),
      `runs ${Object.keys(merged.runs)} vs ${Object.keys(whole.runs)}`,
    );
    assert(merged.config.seeds === 2 && merged.config.seed === 1, "merged seeds 1…2");
    // Without genre fine-tuning no claim is about it (it would read "inconclusive" on no data).
    assert(
      merged.claims.length > 0 &&
        merged.claims.every((c: { metric: string }) => c.metric === "val_loss"),
      `claims of unmeasured metrics: ${merged.claims.map((c: { metric: string }) => c.metric)}`,
    );
    const table = await Deno.readTextFile(`${dir}/m/table.md`);
    assert(!table.includes("genre accuracy is within"), "the table should have no genre claim");
    assert(table.includes("combined by `--merge`"), "the table should say it was merged");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gpt2.ts --merge refuses runs of another configuration or the same run twice", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twofour_merge_" });
  try {
    for (
      const [name, args] of [
        ["a", ["--seed=1", "--seeds=1", "--steps=4", "--methods=dense,s-ste"]],
        ["b", ["--seed=2", "--seeds=1", "--steps=6", "--methods=dense,s-ste"]],
        ["c", ["--seed=1", "--seeds=1", "--steps=4", "--methods=dense"]],
      ] as const
    ) {
      const error = await quietly([...BASE, ...args, `--out=${dir}/${name}`]);
      if (error) throw error;
    }
    const other = await quietly([...TINY, `--merge=${dir}/a,${dir}/b`, `--out=${dir}/m`]);
    assert(
      other instanceof RangeError && other.message.includes("--steps=6"),
      `another --steps: ${other}`,
    );
    const twice = await quietly([...TINY, `--merge=${dir}/a,${dir}/c`, `--out=${dir}/m`]);
    assert(
      twice instanceof RangeError && twice.message.includes("dense_s1"),
      `the same run twice: ${twice}`,
    );
    const empty = await quietly([...TINY, `--merge=${dir}/nothing`, `--out=${dir}/m`]);
    assert(empty instanceof RangeError, `a folder without runs: ${empty}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gpt2.ts --alphaFrom trains T-SR-STE with the selected α and records it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twofour_alpha_" });
  try {
    await Deno.writeTextFile(`${dir}/sel.json`, JSON.stringify({ selected_alpha: 0.25 }));
    const args = [...BASE, "--methods=t-sr-ste", "--steps=4", "--seeds=1"];
    const error = await quietly([...args, `--alphaFrom=${dir}/sel.json`, `--out=${dir}/o`]);
    if (error) throw error;
    const summary = await readJson(`${dir}/o/summary.json`);
    assert(summary.config.alpha === 0.25, `recorded α ${summary.config.alpha}`);
    const record = await readJson(`${dir}/o/runs/t-sr-ste_s1.json`);
    assert(record.config.alpha === 0.25, `the run's α ${record.config.alpha}`);
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ selected_alpha: "x" }));
    for (const path of [`${dir}/bad.json`, `${dir}/missing.json`]) {
      const bad = await quietly([...args, `--alphaFrom=${path}`, `--out=${dir}/never`]);
      assert(
        (bad instanceof TypeError || bad instanceof RangeError) &&
          bad.message.includes("--alphaFrom"),
        `${path}: ${bad}`,
      );
    }
    assert(
      await Deno.stat(`${dir}/never`).then(() => false, () => true),
      "a bad --alphaFrom should be rejected before any output",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
