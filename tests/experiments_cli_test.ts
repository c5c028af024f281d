/**
 * The experiment scripts under bad input (issue 10, items 8 and 10): every flag is validated
 * before any work, a repeated flag is rejected, an empty run never replaces earlier outputs, and
 * every expected failure ends with one `error:` line and a non-zero exit status.
 *
 * @module
 */

import { main as gpt2Main } from "../experiments/gpt2.ts";
import { main as flipRateMain } from "../experiments/flip_rate.ts";
import { main as alphaSelectMain } from "../experiments/alpha_select.ts";
import { main as ablationsMain } from "../experiments/ablations.ts";
import { main as prepareMain } from "../experiments/prepare_brown.ts";
import { main as exportHfMain } from "../experiments/export_hf.ts";
import { main as seq2seqMain } from "../experiments/seq2seq.ts";
import { assert } from "../reference/testing.ts";

const DATA = new URL("../data/brown", import.meta.url).pathname;
const GPT2 = new URL("../experiments/gpt2.ts", import.meta.url).pathname;

/** Whether `path` exists (any other stat error propagates). */
const exists = (path: string): Promise<boolean> =>
  Deno.stat(path).then(() => true, (e) => {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  });

/** Runs `fn` with `console.log` captured; returns what it printed. */
async function captured(fn: () => Promise<unknown>): Promise<{ lines: string[]; error?: unknown }> {
  const log = console.log;
  const lines: string[] = [];
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    await fn();
    return { lines };
  } catch (error) {
    return { lines, error };
  } finally {
    console.log = log;
  }
}

/**
 * Expects `main(args)` to reject with a TypeError or RangeError naming `flag`, having printed
 * nothing and created nothing in `out` (so no work was done).
 */
async function expectRejectedBeforeWork(
  main: (args: string[]) => Promise<unknown>,
  args: string[],
  flag: string,
  out: string,
): Promise<void> {
  const { lines, error } = await captured(() => main([...args, `--out=${out}`, `--data=${DATA}`]));
  const what = args.join(" ");
  assert(
    error instanceof TypeError || error instanceof RangeError,
    `${what}: expected a TypeError or RangeError, got ${error}`,
  );
  assert((error as Error).message.includes(flag), `${what}: message ${(error as Error).message}`);
  assert(lines.length === 0, `${what}: work started before the rejection: ${lines[0]}`);
  assert(!(await exists(out)), `${what}: ${out} was created`);
}

Deno.test("gpt2.ts validates every flag before any work (issue 10 item 8)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twofour_cli_" });
  try {
    const out = `${dir}/out`;
    const base = ["--preset=cpu-tiny", "--backend=reference"];
    const cases: [string[], string][] = [
      [["--labels=foo"], "--labels"],
      [["--finetuneSteps=0"], "--finetuneSteps"],
      [["--finetuneSteps=1"], "--finetuneSteps"],
      [["--finetuneBatch=0"], "--finetuneBatch"],
      [["--finetuneLr=0"], "--finetuneLr"],
      [["--passageTokens=0"], "--passageTokens"],
      [["--passageTokens=17"], "--passageTokens"], // longer than the context (blockSize 16)
      [["--maxPerDoc=0"], "--maxPerDoc"],
      [["--seeds=0"], "--seeds"],
      [["--maskRefresh=-1"], "--maskRefresh"],
      [["--posPerDoc=0"], "--posPerDoc"],
      [["--posValPerDoc=0"], "--posValPerDoc"],
      [["--probeEpochs=0"], "--probeEpochs"],
      [["--evalBatches=0"], "--evalBatches"],
      [["--methods="], "--methods"],
      [["--methods=,"], "--methods"],
      [["--methods=ste,ste"], "--methods"],
      [["--methods=sparse"], "--methods"],
      [["--steps=0"], "--steps"],
      [["--warmup=12"], "--warmup"],
      [["--minLr=1"], "--minLr"],
      [["--checkpointEvery=0"], "--checkpointEvery"],
      [["--vocab=1"], "--vocab"],
      [["--nEmbd=30", "--nHead=3"], "--nEmbd"],
      [["--nHead=3"], "nEmbd must be a multiple of nHead"],
      [["--backend=cuda"], "--backend"],
      [["--steps=5", "--steps=6"], "--steps is given twice"],
      [["--resume", "--resume"], "--resume is given twice"],
      [["--bogus=1"], "unknown option --bogus"],
    ];
    for (const [args, flag] of cases) {
      await expectRejectedBeforeWork(gpt2Main, [...base, ...args], flag, out);
    }
    // `--out=` (empty) is not the filesystem root.
    const { error } = await captured(() => gpt2Main([...base, "--out="]));
    assert(error instanceof TypeError && error.message.includes("--out"), `--out=: ${error}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flip_rate, alpha_select, ablations, prepare_brown and export_hf validate their flags first", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twofour_cli_" });
  try {
    const out = `${dir}/out`;
    const base = ["--preset=cpu-tiny", "--backend=reference"];
    const flipCases: [string[], string][] = [
      [["--alphas="], "--alphas"],
      [["--alphas=0,-1"], "--alphas"],
      [["--evalBatches=0"], "--evalBatches"],
      [["--checkpointEvery=0"], "--checkpointEvery"],
      [["--smooth=1", "--smooth=2"], "--smooth is given twice"],
      [["--seeds=0"], "--seeds"],
    ];
    for (const [args, flag] of flipCases) {
      await expectRejectedBeforeWork(flipRateMain, [...base, ...args], flag, out);
    }
    const alphaCases: [string[], string][] = [
      [["--seeds=1"], "--seeds"],
      [["--seeds=1,x"], "--seeds"],
      [["--alphas=0,-1"], "--alphas"],
      [["--probeSteps=3"], "--probeSteps"],
      [["--probeAlphas=0"], "--probeAlphas"],
    ];
    for (const [args, flag] of alphaCases) {
      await expectRejectedBeforeWork(alphaSelectMain, [...base, ...args], flag, out);
    }
    const ablationCases: [string[], string][] = [
      [["--tables="], "--tables"],
      [["--tables=beta,,fp8"], "--tables"],
      [["--tables=gamma"], "--tables"],
      [["--denseFractions=0,1/6,2"], "--denseFractions"],
      [["--evalBatches=0"], "--evalBatches"],
      [["--maskRefresh=0"], "maskRefresh"],
      [["--checkpointEvery=1.5"], "--checkpointEvery"],
      [["--seeds=1.5"], "--seeds"],
    ];
    for (const [args, flag] of ablationCases) {
      await expectRejectedBeforeWork(ablationsMain, [...base, ...args], flag, out);
    }
    const noDataCases: [(args: string[]) => Promise<unknown>, string[], string][] = [
      [prepareMain, ["--val=1"], "--val"],
      [prepareMain, ["--seed=-1"], "--seed"],
      [exportHfMain, ["--method=sparse"], "--method"],
      [exportHfMain, ["--model=gpt2-124m"], "--model"],
      [exportHfMain, ["--batch=0"], "--batch"],
      [exportHfMain, ["--dense", "--dense=false"], "--dense is given twice"],
    ];
    for (const [main, args, flag] of noDataCases) {
      const { lines, error } = await captured(() => main([...args, `--out=${out}`]));
      assert(
        (error instanceof RangeError || error instanceof TypeError) && error.message.includes(flag),
        `${args}: ${error}`,
      );
      assert(lines.length === 0 && !(await exists(out)), `${args}: work started`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a rejected run leaves the previous summary.json and table.md untouched", async () => {
  const out = await Deno.makeTempDir({ prefix: "twofour_cli_" });
  try {
    await Deno.writeTextFile(`${out}/summary.json`, '{"experiment":"gpt2","earlier":true}\n');
    await Deno.writeTextFile(`${out}/table.md`, "| earlier |\n");
    for (const methods of ["--methods=", "--methods=,", "--methods= , "]) {
      const { error } = await captured(() =>
        gpt2Main(["--preset=cpu-tiny", "--backend=reference", methods, `--out=${out}`])
      );
      assert(error instanceof TypeError, `${methods}: ${error}`);
    }
    assert(
      (await Deno.readTextFile(`${out}/summary.json`)).includes('"earlier":true'),
      "summary.json was overwritten",
    );
    assert((await Deno.readTextFile(`${out}/table.md`)) === "| earlier |\n", "table.md changed");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("gpt2.ts --checkpointEvery sets how often the checkpoint is written", async () => {
  const out = await Deno.makeTempDir({ prefix: "twofour_cli_" });
  const rename = Deno.rename;
  const written: string[] = [];
  // Checkpoints are written atomically (a temporary file renamed over the checkpoint).
  Deno.rename = (from: string | URL, to: string | URL) => {
    if (String(to).endsWith("/checkpoints/dense_s1.safetensors")) written.push(String(to));
    return rename(from, to);
  };
  try {
    const args = [
      "--preset=cpu-tiny",
      "--backend=reference",
      "--methods=dense",
      "--seeds=1",
      "--pos=false",
      "--steps=6",
      "--finetuneSteps=2",
      `--out=${out}`,
      `--data=${DATA}`,
    ];
    const every2 = await captured(() => gpt2Main([...args, "--checkpointEvery=2"]));
    if (every2.error) throw every2.error;
    assert(written.length === 3, `--checkpointEvery=2 over 6 steps: ${written.length} writes`);
    written.length = 0;
    await Deno.remove(`${out}/checkpoints`, { recursive: true });
    const byDefault = await captured(() => gpt2Main(args));
    if (byDefault.error) throw byDefault.error;
    assert(written.length === 1, `default (every 100) over 6 steps: ${written.length} writes`);
  } finally {
    Deno.rename = rename;
    await Deno.remove(out, { recursive: true });
  }
});

/** Runs an experiment script (a path) in a subprocess with `permissions`. */
async function runScript(
  script: string,
  args: string[],
  permissions = ["-A"],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: result.code, stdout: text(result.stdout), stderr: text(result.stderr) };
}

/** Runs gpt2.ts in a subprocess. */
const runGpt2 = (args: string[]) =>
  runScript(GPT2, args, ["--allow-read", "--allow-write", "--allow-env"]);

function checkOneLine(stderr: string, includes: string, what: string): void {
  const lines = stderr.trimEnd().split("\n");
  assert(
    lines.length === 1 && lines[0].startsWith("error: ") && lines[0].includes(includes),
    `${what}: expected one "error: …${includes}…" line, got:\n${stderr}`,
  );
}

Deno.test("gpt2.ts ends every expected failure with one line and a non-zero status", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twofour_cli_" });
  try {
    const base = ["--preset=cpu-tiny", "--backend=reference", `--data=${DATA}`];
    // A bad flag: status 2.
    const bad = await runGpt2([...base, "--labels=foo", `--out=${dir}/a`]);
    assert(bad.code === 2, `--labels=foo exited with ${bad.code}`);
    checkOneLine(bad.stderr, "--labels", "--labels=foo");
    // A corrupt checkpoint on --resume (a CheckpointError): status 1, no stack trace.
    const out = `${dir}/b`;
    await Deno.mkdir(`${out}/checkpoints`, { recursive: true });
    await Deno.writeTextFile(`${out}/checkpoints/dense_s1.safetensors`, "not a checkpoint");
    await Deno.writeTextFile(
      `${out}/checkpoints/dense.log.json`,
      '{"steps":[],"val":[],"trainSeconds":0,"tokens":0}',
    );
    const corrupt = await runGpt2([
      ...base,
      "--methods=dense",
      "--seeds=1",
      "--pos=false",
      "--resume",
      `--out=${out}`,
    ]);
    assert(corrupt.code === 1, `a corrupt checkpoint exited with ${corrupt.code}`);
    checkOneLine(corrupt.stderr, "safetensors", "a corrupt checkpoint");
    // A filesystem error (the output directory under a regular file): status 1.
    await Deno.writeTextFile(`${dir}/file`, "");
    const fs = await runGpt2([...base, `--out=${dir}/file/out`]);
    assert(fs.code === 1, `an unusable --out exited with ${fs.code}`);
    checkOneLine(fs.stderr, "file/out", "an unusable --out");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("seq2seq.ts validates every flag before any work", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twofour_cli_" });
  try {
    const out = `${dir}/out`;
    const base = ["--preset=smoke", "--backend=reference"];
    const cases: [string[], string][] = [
      [["--methods=dense,nope"], "--methods"],
      [["--methods=ste,ste"], "--methods"],
      [["--source=chars"], "--source"],
      [["--batchSize=6"], "--batchSize"],
      [["--warmup=4"], "--warmup"],
      [["--minLr=1"], "--minLr"],
      [["--vocab=1"], "--vocab"],
      [["--seeds=0"], "--seeds"],
      [["--backend=cuda"], "--backend"],
    ];
    for (const [args, flag] of cases) {
      await expectRejectedBeforeWork(seq2seqMain, [...base, ...args], flag, out);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--help prints the script's usage and options and exits 0", async () => {
  const script = (name: string) => new URL(`../experiments/${name}`, import.meta.url).pathname;
  // gpt2.ts runs under runCli; speed.ts at top level (cliConfig).
  const [gpt2, speed] = await Promise.all([
    runScript(GPT2, ["--help"]),
    runScript(script("speed.ts"), ["--help"]),
  ]);
  for (
    const [name, run, option] of [["gpt2.ts", gpt2, "--methods="], [
      "speed.ts",
      speed,
      "--sections=",
    ]] as const
  ) {
    assert(
      run.code === 0 && run.stderr === "",
      `${name} --help: status ${run.code}, ${run.stderr}`,
    );
    assert(run.stdout.includes("Usage"), `${name} --help: no usage in\n${run.stdout}`);
    assert(run.stdout.includes(`\n  ${option}`), `${name} --help: no ${option} in\n${run.stdout}`);
  }
  assert(gpt2.stdout.includes("cpu-tiny"), "gpt2.ts --help names its presets");
});

Deno.test("the benchmark and export scripts end a bad flag with one error line and status 2", async () => {
  const script = (name: string) => new URL(`../experiments/${name}`, import.meta.url).pathname;
  const cases: [string, string[], string][] = [
    ["speed.ts", ["--sections=gemm,nope"], "--sections"],
    ["zoo/gemm_speed.ts", ["--bogus=1"], "--bogus"],
    ["zoo/sparse_bound.ts", ["--quick=maybe"], "--quick"],
    ["cpu_zoo.ts", ["--bogus=1"], "--bogus"],
    // `--methods=none` is accepted (the documented way to time no method); the engine is not.
    ["bench_cpu.ts", ["--methods=none", "--engines=nope"], "engine nope"],
    ["export_vectors.ts", ["--seed=-1"], "--seed"],
  ];
  const runs = await Promise.all(cases.map(([name, args]) => runScript(script(name), args)));
  runs.forEach((run, i) => {
    const [name, args, includes] = cases[i];
    const what = `${name} ${args.join(" ")}`;
    assert(run.code === 2, `${what}: exited with ${run.code}:\n${run.stderr}`);
    checkOneLine(run.stderr, includes, what);
  });
});
