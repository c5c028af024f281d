/**
 * Smoke run of `experiments/seq2seq.ts` (its `smoke` preset, every method, two seeds, reference
 * backend): every output is written, every run reports BLEU and tag accuracy in [0, 100], every
 * non-baseline method has a paired difference against dense; bad flags are rejected before work.
 *
 * @module
 */

import { main } from "../experiments/seq2seq.ts";
import { SPARSE_METHODS } from "../core/sparse.ts";
import { assert, assertRejects } from "../reference/testing.ts";

const DATA = new URL("../data/brown", import.meta.url).pathname;

async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = () => {};
  try {
    return await fn();
  } finally {
    console.log = log;
  }
}

Deno.test("seq2seq.ts runs its smoke preset and writes its outputs", async () => {
  const out = await Deno.makeTempDir({ prefix: "twofour_seq2seq_" });
  try {
    // deno-lint-ignore no-explicit-any
    const summary: any = await quietly(() =>
      main(["--preset=smoke", "--backend=reference", `--out=${out}`, `--data=${DATA}`])
    );
    for (const name of ["summary.json", "table.md", "bleu.svg", "loss.svg"]) {
      const info = await Deno.stat(`${out}/${name}`);
      assert(info.isFile && info.size > 0, `${name} should be a non-empty file`);
    }
    assert(summary.runs.length === 2 * SPARSE_METHODS.length, `${summary.runs.length} runs`);
    for (const r of summary.runs) {
      for (const key of ["bleu", "tagAccuracy"]) {
        assert(r[key] >= 0 && r[key] <= 100, `${r.method} seed ${r.seed}: ${key} ${r[key]}`);
      }
      assert(Number.isFinite(r.valLoss) && r.loss.length > 0, `${r.method}: loss`);
    }
    const table = await Deno.readTextFile(`${out}/table.md`);
    for (const m of SPARSE_METHODS) {
      assert(table.includes(`| ${m} |`), `table row of ${m}`);
      const paired = summary.bleu[m].vsDense;
      assert((m === "dense") === (paired === undefined), `${m}: paired difference`);
      if (paired) assert(paired.n === 2 && Number.isFinite(paired.halfWidth), `${m}: interval`);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("seq2seq.ts rejects bad flags before any work", async () => {
  const out = `${await Deno.makeTempDir({ prefix: "twofour_seq2seq_bad_" })}/never`;
  for (
    const [flag, args] of [
      ["methods", ["--methods=dense,nope"]],
      ["source", ["--source=chars"]],
      ["batchSize", ["--batchSize=6"]],
      ["warmup", ["--steps=10", "--warmup=10"]],
    ] as const
  ) {
    const error = await assertRejects(
      () => quietly(() => main([...args, "--preset=smoke", `--out=${out}`])),
      Error,
      flag,
    );
    assert(error instanceof TypeError || error instanceof RangeError, `${flag}: ${error}`);
  }
  const created = await Deno.stat(out).then(() => true, () => false);
  assert(!created, "a rejected run must not create its output directory");
});
