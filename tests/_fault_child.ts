/**
 * The subprocess of `fault_injection_test.ts`: a tiny resumable training run (`trainRun` of
 * `experiments/lm.ts` on the reference backend, a checkpoint after every step) whose filesystem
 * writes are counted, and which dies at the Nth one as a `kill -9` would: no `finally`, no
 * cleanup, a torn write if asked.
 *
 * Usage: `deno run -A tests/_fault_child.ts DIR METHOD KILL_AT MODE RESUME` with `KILL_AT` 0 for
 * no kill, `MODE` `before` (die before the call) or `torn` (a write stops halfway, then die),
 * `RESUME` `true`/`false`. Prints `OPS <json>` (every counted call) and `SUMMARY <json>` (the log
 * without timings, and a digest of the final weights and moments) when it finishes.
 *
 * @module
 */

import { ReferenceBackend } from "../core/reference_backend.ts";
import { gptConfig } from "../core/gpt2.ts";
import type { SparseMethod } from "../core/sparse.ts";
import { lmBatch, trainRun } from "../experiments/lm.ts";

/** Exit status of a simulated kill. */
export const KILLED = 86;

const [dir, method, killAtText, mode, resumeText] = Deno.args;
const killAt = Number(killAtText);
const ops: [string, string][] = [];

/** Counts a mutating call; at the chosen one, dies (after half of a write in `torn` mode). */
async function intercept(
  kind: string,
  target: string,
  run: () => Promise<unknown>,
  half?: () => Promise<unknown>,
): Promise<unknown> {
  ops.push([kind, target.slice(target.lastIndexOf("/") + 1)]);
  if (ops.length === killAt) {
    if (mode === "torn" && half !== undefined) await half();
    Deno.exit(KILLED);
  }
  return await run();
}

/** {@linkcode intercept} for a write of `data`: a torn write stores its first half. */
function interceptWrite<D extends Uint8Array | string>(
  kind: string,
  target: string,
  data: D,
  write: (part: D) => Promise<unknown>,
): Promise<unknown> {
  return intercept(
    kind,
    target,
    () => write(data),
    () => write(data.slice(0, data.length >> 1) as D),
  );
}

const original = {
  open: Deno.open,
  rename: Deno.rename,
  remove: Deno.remove,
  writeFile: Deno.writeFile,
  writeTextFile: Deno.writeTextFile,
  write: Deno.FsFile.prototype.write,
  sync: Deno.FsFile.prototype.sync,
};
const paths = new WeakMap<Deno.FsFile, string>();
Object.assign(Deno, {
  open: async (path: string | URL, options?: Deno.OpenOptions) => {
    const p = String(path);
    const writes = options?.write || options?.create || options?.createNew || options?.append;
    const file = writes
      ? await intercept("open", p, () => original.open(path, options)) as Deno.FsFile
      : await original.open(path, options);
    paths.set(file, p);
    return file;
  },
  rename: (from: string | URL, to: string | URL) =>
    intercept(
      `rename→${String(to).slice(String(to).lastIndexOf("/") + 1)}`,
      String(from),
      () => original.rename(from, to),
    ),
  remove: (path: string | URL, options?: Deno.RemoveOptions) =>
    intercept("remove", String(path), () => original.remove(path, options)),
  writeFile: (path: string | URL, data: Uint8Array, options?: Deno.WriteFileOptions) =>
    interceptWrite("writeFile", String(path), data, (d) => original.writeFile(path, d, options)),
  writeTextFile: (path: string | URL, data: string, options?: Deno.WriteFileOptions) =>
    interceptWrite(
      "writeTextFile",
      String(path),
      data,
      (d) => original.writeTextFile(path, d, options),
    ),
});
Deno.FsFile.prototype.write = function (this: Deno.FsFile, buffer: Uint8Array) {
  return interceptWrite(
    "write",
    paths.get(this) ?? "?",
    buffer,
    (b) => original.write.call(this, b),
  ) as Promise<number>;
};
Deno.FsFile.prototype.sync = function (this: Deno.FsFile) {
  return intercept("sync", paths.get(this) ?? "?", () => original.sync.call(this)) as Promise<
    void
  >;
};

// The run: tiny GPT, 6 steps, an evaluation every 2 steps, a checkpoint after every step.
const VOCAB = 32, BLOCK = 8, BATCH = 2, STEPS = 6;
let state = 12345;
const tokens = Uint16Array.from({ length: 4096 }, () => {
  state = (state * 1103515245 + 12345) >>> 0;
  return (state >>> 16) % VOCAB;
});
const val = tokens.slice(0, 512);
const sparse = method === "t-sr-ste+df"
  ? { method: method as SparseMethod, maskRefresh: 2, denseFraction: 0.5 }
  : { method: method as SparseMethod };
const backend = new ReferenceBackend();
const { trainer, log } = await trainRun({
  label: method,
  backend,
  model: gptConfig("tiny", { sparse }),
  initSeed: 1,
  trainer: { totalSteps: STEPS, peakLr: 1e-2, warmupSteps: 1, minLr: 1e-3, seed: 3 },
  tokens,
  batchSize: BATCH,
  blockSize: BLOCK,
  dataSeed: 5,
  val: {
    batches: [0, 1].map((i) => lmBatch(val, BATCH, BLOCK, 9999, i)),
    every: 2,
    dense: () => false,
  },
  checkpoint: `${dir}/run.safetensors`,
  checkpointEvery: 1,
  resume: resumeText === "true",
  logEvery: 1000,
});

// A digest of everything the next step would depend on.
const params = trainer.model.parameters();
const values = await backend.readMany([
  ...params.map((p) => p.value),
  ...params.flatMap((p) => {
    const { m, v } = trainer.optimizer.moments(p.name);
    return [m, v];
  }),
]);
let hash = 2166136261;
for (const v of values) {
  for (const byte of new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) {
    hash = Math.imul(hash ^ byte, 16777619) >>> 0;
  }
}
const { trainSeconds: _, ...timeless } = log;
console.log(`OPS ${JSON.stringify(ops)}`);
console.log(
  `SUMMARY ${JSON.stringify({ ...timeless, step: trainer.step, phase: trainer.phase, hash })}`,
);
