/**
 * Fault injection: a tiny training run (`_fault_child.ts`, a checkpoint after every step) is
 * killed at every filesystem write, sync and rename of its checkpoints — before the call, and
 * halfway through every write — then resumed; the resumed run must end exactly where the
 * uninterrupted one does (log, evaluations, weights and moments), resume from the last checkpoint
 * that was completely written (nothing lost), and leave no temporary file behind. Then what
 * `--resume` does with checkpoints that cannot be resumed from, in process.
 */

import { ReferenceBackend } from "../core/reference_backend.ts";
import { GPT, gptConfig } from "../core/gpt2.ts";
import { Trainer } from "../core/trainer.ts";
import { saveCheckpoint } from "../core/checkpoint.ts";
import { CheckpointError, decodeSafetensors, encodeSafetensors } from "../core/safetensors.ts";
import { lmBatch, trainRun, type TrainRunOptions } from "../experiments/lm.ts";

const CHILD = new URL("./_fault_child.ts", import.meta.url).pathname;
const KILLED = 86;

interface ChildResult {
  code: number;
  stdout: string;
  ops: [string, string][];
  summary: string | undefined;
}

async function child(
  dir: string,
  method: string,
  killAt: number,
  mode: "before" | "torn",
  resume: boolean,
): Promise<ChildResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, dir, method, String(killAt), mode, String(resume)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const line = (tag: string) =>
    stdout.split("\n").find((l) => l.startsWith(`${tag} `))?.slice(tag.length + 1);
  if (out.code !== 0 && out.code !== KILLED) {
    throw new Error(
      `child ${method} kill ${killAt} ${mode} resume ${resume} failed (${out.code}):\n${stdout}\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  const ops = line("OPS");
  return { code: out.code, stdout, ops: ops ? JSON.parse(ops) : [], summary: line("SUMMARY") };
}

/** Which step a fresh process resumed at, from its progress line. */
function resumedAt(stdout: string): number {
  const match = /resumed at step (\d+)/.exec(stdout);
  if (match) return Number(match[1]);
  if (/starting at step 0/.test(stdout) || !/resumed/.test(stdout)) return 0;
  throw new Error(`no resume line in:\n${stdout}`);
}

/** Every kill the suite makes, counted for the report of `fault cases`. */
let faultCases = 0;

for (const method of ["t-sr-ste+df", "s-ste"]) {
  Deno.test(`fault injection (${method}): a kill at any checkpoint write or rename, then --resume, equals an uninterrupted run`, async () => {
    const root = await Deno.makeTempDir();
    try {
      const clean = await child(`${root}`, method, 0, "before", false);
      if (clean.code !== 0 || clean.summary === undefined) throw new Error("the clean run failed");
      const kills: [number, "before" | "torn"][] = [];
      clean.ops.forEach(([kind], i) => {
        kills.push([i + 1, "before"]);
        if (kind === "write" || kind === "writeFile" || kind === "writeTextFile") {
          kills.push([i + 1, "torn"]);
        }
      });
      const failures: string[] = [];
      for (const [killAt, mode] of kills) {
        const dir = await Deno.makeTempDir({ dir: root });
        const killed = await child(dir, method, killAt, mode, false);
        if (killed.code !== KILLED) throw new Error(`kill ${killAt} did not happen`);
        // The checkpoint on disk is the last one whose rename completed before the kill.
        const durable = clean.ops.slice(0, killAt - 1).filter(([kind]) =>
          kind === "rename→run.safetensors"
        ).length;
        const resumed = await child(dir, method, 0, "before", true);
        const at = resumedAt(resumed.stdout);
        const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes("tmp"));
        const label = `kill before call ${killAt} (${clean.ops[killAt - 1].join(" ")}, ${mode})`;
        if (resumed.summary !== clean.summary) {
          failures.push(
            `${label}: the resumed run ended differently:\n  ${resumed.summary}\n  ${clean.summary}`,
          );
        } else if (at !== durable) {
          failures.push(
            `${label}: resumed at step ${at}, the last complete checkpoint is ${durable}`,
          );
        } else if (left.length > 0) {
          failures.push(`${label}: temporary files left after the resume: ${left.join(", ")}`);
        }
        faultCases++;
      }
      console.log(
        `fault injection (${method}): ${kills.length} kills at ${clean.ops.length} write/sync/rename ` +
          `calls, ${kills.length - failures.length} resumed to the uninterrupted result`,
      );
      if (failures.length > 0) {
        throw new Error(
          `${failures.length} of ${kills.length} kills lost data or changed the result:\n${
            failures.slice(0, 5).join("\n")
          }`,
        );
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}

// ---- --resume with checkpoints that cannot be resumed from --------------------------------------

const TINY = { vocab: 32, block: 8, batch: 2 };
function runOptions(checkpoint: string, resume: boolean): TrainRunOptions {
  const tokens = Uint16Array.from({ length: 1024 }, (_, i) => (i * 7 + 3) % TINY.vocab);
  return {
    label: "resume",
    backend: new ReferenceBackend(),
    model: gptConfig("tiny", { sparse: { method: "ste" } }),
    initSeed: 1,
    trainer: { totalSteps: 4, peakLr: 1e-2, warmupSteps: 1, minLr: 1e-3, seed: 3 },
    tokens,
    batchSize: TINY.batch,
    blockSize: TINY.block,
    dataSeed: 5,
    val: { batches: [lmBatch(tokens, TINY.batch, TINY.block, 9, 0)], every: 2, dense: () => false },
    checkpoint,
    checkpointEvery: 1,
    resume,
    logEvery: 1000,
  };
}

Deno.test("--resume refuses a checkpoint it cannot resume from, naming the file, and leaves it as it was", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/run.safetensors`;
    // A checkpoint without a run log (an earlier version kept it in a separate file).
    const options = runOptions(path, false);
    const trainer = new Trainer(
      await GPT.create(options.backend, options.model, { seed: 1 }),
      options.trainer,
    );
    await trainer.trainStep(lmBatch(options.tokens, TINY.batch, TINY.block, 5, 0));
    await saveCheckpoint(path, trainer);
    const noLog = await Deno.readFile(path);

    await trainRun(runOptions(`${dir}/good.safetensors`, false));
    const good = decodeSafetensors(await Deno.readFile(`${dir}/good.safetensors`));
    const edited = (edit: (metadata: Record<string, string>) => void) => {
      const metadata = { ...good.metadata };
      edit(metadata);
      return encodeSafetensors(good.tensors, metadata);
    };
    const full = encodeSafetensors(good.tensors, good.metadata);
    const cases: [string, Uint8Array, RegExp][] = [
      ["no run log", noLog, /holds no run log/],
      [
        "a truncated run log",
        edited((m) => (m.runLog = m.runLog.slice(0, 40))),
        /metadata runLog is not valid JSON/,
      ],
      [
        "a run log one step short",
        edited((m) => {
          const log = JSON.parse(m.runLog);
          log.steps.pop();
          m.runLog = JSON.stringify(log);
        }),
        /has 3 steps, the checkpoint 4/,
      ],
      [
        "a run log with a NaN loss",
        edited((m) => (m.runLog = m.runLog.replace(/"loss":[^,]+/, '"loss":null'))),
        /run log entry 0/,
      ],
      [
        "a run log with a wrong token count",
        edited((m) => (m.runLog = m.runLog.replace(/"tokens":\d+/, '"tokens":5'))),
        /counts 5 tokens/,
      ],
      [
        "evaluations beyond the step",
        edited((m) => (m.runLog = m.runLog.replace(/"val":\[\[2,/, '"val":[[9,'))),
        /evaluations/,
      ],
      [
        "a truncated checkpoint",
        full.subarray(0, full.length - 100),
        /header length|out of range|ended/,
      ],
      ["an empty checkpoint", new Uint8Array(0), /too short/],
    ];
    for (const [label, bytes, pattern] of cases) {
      await Deno.writeFile(path, bytes);
      let error: unknown;
      try {
        await trainRun(runOptions(path, true));
      } catch (e) {
        error = e;
      }
      if (!(error instanceof CheckpointError)) throw new Error(`${label}: got ${error}`);
      if (!error.message.includes(path) || !pattern.test(error.message)) {
        throw new Error(`${label}: expected ${pattern} and the path, got "${error.message}"`);
      }
      const after = await Deno.readFile(path);
      if (after.length !== bytes.length || after.some((b, i) => b !== bytes[i])) {
        throw new Error(`${label}: the checkpoint was overwritten`);
      }
      faultCases++;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stale temporary files of killed writes are removed by the next run, with a message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/run.safetensors`;
    const stale = [`${dir}/.run.safetensors.123456.tmp`, `${dir}/run.log.json.tmp`];
    const kept = [`${dir}/.other.safetensors.1.tmp`, `${dir}/.run.safetensors.x.tmp`];
    for (const p of [...stale, ...kept]) await Deno.writeFile(p, new Uint8Array(1000));
    const lines: string[] = [];
    const log = console.log;
    console.log = (line: string) => lines.push(line);
    try {
      await trainRun(runOptions(path, true));
    } finally {
      console.log = log;
    }
    const names = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`).sort();
    const expected = [path, ...kept].sort();
    if (JSON.stringify(names) !== JSON.stringify(expected)) {
      throw new Error(`left ${names.join(", ")}, expected ${expected.join(", ")}`);
    }
    for (const p of stale) {
      if (!lines.some((l) => l.includes(`removed ${p}`))) throw new Error(`no message for ${p}`);
    }
    faultCases += stale.length;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fault injection: the count of fault cases", () => {
  console.log(`fault injection: ${faultCases} kills and unresumable checkpoints, none lost data`);
  if (faultCases < 50) throw new Error(`only ${faultCases} fault cases ran`);
});
