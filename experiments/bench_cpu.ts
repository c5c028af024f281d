/**
 * Training-step throughput of the `cpu` preset of `experiments/gpt2.ts` (2 layers × 128, 4 heads,
 * context 64, batch 16 → 1,024 tokens a step, vocabulary 4,096, dense, AdamW + clipping, f32) on
 * every engine present, next to PyTorch CPU eager on the same model in the SAME run
 * (`torch_cpu_baseline.py`, 2 threads, from a throw-away virtual environment: `--python=`).
 *
 * One "step" is `Trainer.trainStep` (forward, backward, the step's one read, clipping, AdamW,
 * `release()`); PyTorch's is forward, backward, `clip_grad_norm_`, `AdamW.step`. Engines run in
 * interleaved rounds (cpu, webgpu, torch, cpu, webgpu, torch, …) so a machine shared with other
 * jobs slows all of them alike; the figure is the median step time over rounds, as tokens/s and as
 * a ratio to PyTorch's. The reference backend (seconds per step) runs one step in the first
 * `referenceRounds` rounds only. Then the step time of every 2:4 method on the CPU backend and the
 * software WebGPU adapter, interleaved (for sizing the 20-minute default run).
 *
 * Usage:
 *   deno task bench:cpu --python=.venv-torch/bin/python
 *   deno run --allow-read --allow-write --allow-env --allow-ffi --allow-run experiments/bench_cpu.ts \
 *     --engines=cpu,torch --rounds=3 --out=results/cpu
 *   deno task bench:cpu --profile=10 --threads=1   # time per backend operation instead
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { ReferenceBackend } from "../core/reference_backend.ts";
import { createCpuBackend } from "../core/cpu/backend.ts";
import { GEMM_ENGINES } from "../core/cpu/gemm.ts";
import { GPT, gptConfig } from "../core/gpt2.ts";
import { Trainer } from "../core/trainer.ts";
import { SPARSE_METHODS, type SparseMethod } from "../core/sparse.ts";
import { assertOneOf, parseConfig, parseList, runCli } from "./_config.ts";
import process from "node:process";
import { median, spawnJsonLines } from "./_bench.ts";

// ---- configuration ------------------------------------------------------------------------------
const DEFAULTS = {
  /** Comma-separated engines: cpu, webgpu, reference, torch; `cpu-openblas`, `cpu-onednn`: the CPU
   * backend with its GEMM engine forced (`core/cpu/gemm.ts`). */
  engines: "cpu,webgpu,torch,reference",
  /** Interleaved rounds. */
  rounds: 7,
  /** Timed steps per engine and round. */
  stepsPerRound: 3,
  /** Untimed steps per engine first. */
  warmup: 3,
  /** Rounds in which the reference backend runs one step. */
  referenceRounds: 2,
  /** The Python with torch installed (a throw-away venv). */
  python: ".venv-torch/bin/python",
  /** CPU-backend methods to time after the comparison (a list, "all": every method, "none"). */
  methods: "all",
  /** Output folder for bench.md / bench.json (empty: print only). */
  out: "",
  /** Steps of the CPU backend to profile per operation instead of benchmarking (0: benchmark). */
  profile: 0,
  /** Threads of the profiled backend (BLAS and element-wise; 0: the CPU count). With 1, its CPU
   * time per operation is the operation's work, little disturbed by other jobs. */
  threads: 0,
};

/** The pause after PyTorch's steps in each round (above Intel OpenMP's default block time). */
const TORCH_SETTLE_MS = 300;
const MODEL = { vocabSize: 4096, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 128 };
const BATCH = 16, TOKENS = BATCH * MODEL.blockSize;

/** A deterministic batch of step `s` (token ids spread over the vocabulary). */
function batchOf(s: number) {
  const tokens = new Int32Array(TOKENS), targets = new Int32Array(TOKENS);
  for (let i = 0; i < TOKENS; i++) {
    tokens[i] = (i * 7 + 13 * s + 1) % MODEL.vocabSize;
    targets[i] = (i * 5 + 11 * s + 2) % MODEL.vocabSize;
  }
  return { tokens, targets, batchSize: BATCH };
}

/** One engine: `steps(n)` runs `n` timed steps and returns their milliseconds. */
interface Engine {
  name: string;
  device: string;
  steps(n: number): Promise<number[]>;
  close(): Promise<void> | void;
}

async function twofourEngine(be: Backend, method: SparseMethod = "dense"): Promise<Engine> {
  const model = await GPT.create(be, gptConfig("mini", { ...MODEL, sparse: { method } }), {
    seed: 1,
  });
  const trainer = new Trainer(model, {
    totalSteps: 100_000,
    peakLr: 1e-3,
    warmupSteps: 12,
    minLr: 1e-4,
    seed: 1,
  });
  let s = 0;
  return {
    name: be.name,
    device: be.device,
    async steps(n) {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const batch = batchOf(s++);
        const t0 = performance.now();
        await trainer.trainStep(batch);
        ms.push(performance.now() - t0);
      }
      return ms;
    },
    close() {
      for (const p of model.parameters()) be.dispose(p.value);
    },
  };
}

/** PyTorch in a child process that runs steps on request (one JSON line per request). */
async function torchEngine(python: string): Promise<Engine> {
  const script = new URL("./torch_cpu_baseline.py", import.meta.url).pathname;
  const child = spawnJsonLines(python, [script, "--serve", "--threads", "2"]);
  const info = await child.next();
  return {
    name: "pytorch-eager",
    device: `PyTorch ${info.torch}, ${info.threads} threads, ${info.capability}`,
    async steps(n) {
      await child.send(`${n}\n`);
      return (await child.next()).ms as number[];
    },
    async close() {
      await child.send("0\n");
      await child.close();
    },
  };
}

/**
 * The CPU backend's time per operation over `steps` training steps (after 3 untimed ones): every
 * backend method timed through a forwarding proxy (wall clock and process CPU time), sorted by
 * share of the step.
 */
async function profile(steps: number, threads: number): Promise<void> {
  const be = await createCpuBackend(threads > 0 ? { threads } : {});
  const totals = new Map<string, { ms: number; cpuMs: number; calls: number }>();
  let timing = false;
  const timed = new Proxy(be, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      return (...args: unknown[]) => {
        if (!timing) return value.apply(target, args);
        const t0 = performance.now(), c0 = process.cpuUsage();
        const result = value.apply(target, args);
        const entry = totals.get(prop) ?? { ms: 0, cpuMs: 0, calls: 0 };
        entry.ms += performance.now() - t0;
        const c = process.cpuUsage(c0);
        entry.cpuMs += (c.user + c.system) / 1000;
        entry.calls++;
        totals.set(prop, entry);
        return result;
      };
    },
  });
  const engine = await twofourEngine(timed);
  await engine.steps(3);
  timing = true;
  const c0 = process.cpuUsage();
  const stepMs = (await engine.steps(steps)).reduce((a, b) => a + b, 0) / steps;
  const c = process.cpuUsage(c0), cpuMs = (c.user + c.system) / 1000 / steps;
  const rows = [...totals].sort((a, b) => b[1].ms - a[1].ms);
  const inOps = rows.reduce((a, [, e]) => a + e.ms, 0) / steps;
  console.log(
    `${engine.device}\nstep ${stepMs.toFixed(1)} ms (process CPU ${cpuMs.toFixed(1)} ms), in ` +
      `backend calls ${inOps.toFixed(1)} ms; per operation: wall ms, share, CPU ms, calls`,
  );
  for (const [name, e] of rows) {
    console.log(
      `${name.padEnd(22)} ${(e.ms / steps).toFixed(2).padStart(8)} ms ` +
        `${((100 * e.ms) / steps / stepMs).toFixed(1).padStart(5)}% ` +
        `${(e.cpuMs / steps).toFixed(2).padStart(8)} ms  ${e.calls / steps}`,
    );
  }
}

/** The `--methods` value: `none`, `all` or a list of methods. @throws {TypeError} If unknown. */
function methodsToTime(text: string): readonly SparseMethod[] {
  if (text === "none") return [];
  if (text === "all") return SPARSE_METHODS;
  return parseList("methods", text, (m) => assertOneOf("methods", m, SPARSE_METHODS));
}

async function main(args: string[]): Promise<void> {
  const config = parseConfig(DEFAULTS, args);
  const methods = methodsToTime(config.methods);
  if (config.profile > 0) return await profile(config.profile, config.threads);
  const started = new Date();
  const wanted = config.engines.split(",").map((e) => e.trim());
  const engines: Engine[] = [];
  const notes: string[] = [];
  for (const name of wanted) {
    try {
      if (name === "cpu") engines.push(await twofourEngine(await createCpuBackend()));
      else if (name.startsWith("cpu-")) {
        const gemm = assertOneOf("engines", name.slice(4), GEMM_ENGINES);
        engines.push({ ...await twofourEngine(await createCpuBackend({ gemm })), name });
      } else if (name === "webgpu") {
        const { createGpuBackend } = await import("../gpu/backend.ts");
        engines.push(await twofourEngine(await createGpuBackend()));
      } else if (name === "reference") engines.push(await twofourEngine(new ReferenceBackend()));
      else if (name === "torch") engines.push(await torchEngine(config.python));
      else {
        throw new TypeError(
          `Unknown engine ${name} (expected cpu, cpu-onednn, cpu-openblas, webgpu, reference, torch)`,
        );
      }
    } catch (e) {
      if (e instanceof TypeError) throw e;
      notes.push(`${name} not measured: ${(e as Error).message.split("\n")[0]}`);
      console.log(notes[notes.length - 1]);
    }
  }
  for (const e of engines) {
    console.log(`${e.name}: ${e.device}`);
    await e.steps(e.name === "reference" ? 1 : config.warmup);
  }
  const times = new Map(engines.map((e) => [e.name, [] as number[]]));
  for (let r = 0; r < config.rounds; r++) {
    for (const e of engines) {
      if (e.name === "reference" && r >= config.referenceRounds) continue;
      const ms = await e.steps(e.name === "reference" ? 1 : config.stepsPerRound);
      // PyTorch's OpenMP threads keep spinning after its step (Intel OpenMP's 200 ms block time),
      // which slowed whichever engine ran next by up to ~15%: let them go to sleep first.
      if (e.name === "pytorch-eager") await new Promise((r) => setTimeout(r, TORCH_SETTLE_MS));
      times.get(e.name)!.push(...ms);
    }
    console.log(
      `round ${r + 1}/${config.rounds}: ` +
        engines.map((e) => `${e.name} ${median(times.get(e.name)!).toFixed(0)} ms`).join(", "),
    );
  }
  for (const e of engines) await e.close();

  const torchMs = times.has("pytorch-eager") ? median(times.get("pytorch-eager")!) : NaN;
  const rows = engines.map((e) => {
    const ms = median(times.get(e.name)!);
    return {
      engine: e.name,
      device: e.device,
      steps: times.get(e.name)!.length,
      ms,
      tokensPerS: (TOKENS * 1000) / ms,
      vsTorch: torchMs / ms,
    };
  });
  const table = [
    "| engine | device / library | timed steps | ms/step (median) | tokens/s | × PyTorch eager |",
    "|---|---|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.engine} | ${r.device} | ${r.steps} | ${r.ms.toFixed(1)} | ${
        r.tokensPerS.toFixed(0)
      } | ${Number.isFinite(r.vsTorch) ? r.vsTorch.toFixed(2) : "—"} |`
    ),
  ].join("\n");
  console.log(`\n${table}`);

  // Every method on the CPU backend, interleaved with software WebGPU when present (for sizing
  // runs: the current presets were sized on WebGPU).
  const methodRows: { method: string; ms: number; webgpuMs: number | null }[] = [];
  if (methods.length > 0 && wanted.includes("cpu")) {
    const cpuBe = await createCpuBackend();
    let gpuBe: Backend | null = null;
    if (wanted.includes("webgpu")) {
      const { createGpuBackend } = await import("../gpu/backend.ts");
      gpuBe = await createGpuBackend().catch(() => null);
    }
    for (const method of methods) {
      const pair = [await twofourEngine(cpuBe, method)];
      if (gpuBe) pair.push(await twofourEngine(gpuBe, method));
      for (const e of pair) await e.steps(2);
      const ms: number[][] = pair.map(() => []);
      for (let r = 0; r < 3; r++) {
        for (const [i, e] of pair.entries()) ms[i].push(...await e.steps(2));
      }
      for (const e of pair) e.close();
      cpuBe.release();
      gpuBe?.release();
      methodRows.push({ method, ms: median(ms[0]), webgpuMs: gpuBe ? median(ms[1]) : null });
      const row = methodRows[methodRows.length - 1];
      console.log(
        `${method}: cpu ${row.ms.toFixed(1)} ms/step` +
          (row.webgpuMs === null ? "" : `, webgpu ${row.webgpuMs.toFixed(1)} ms/step`),
      );
    }
  }
  const methodTable = methodRows.length
    ? [
      "| method | cpu ms/step | cpu tokens/s | webgpu ms/step | webgpu ÷ cpu |",
      "|---|---:|---:|---:|---:|",
      ...methodRows.map((r) =>
        `| ${r.method} | ${r.ms.toFixed(1)} | ${((TOKENS * 1000) / r.ms).toFixed(0)} | ${
          r.webgpuMs === null ? "—" : r.webgpuMs.toFixed(1)
        } | ${r.webgpuMs === null ? "—" : (r.webgpuMs / r.ms).toFixed(2) + "×"} |`
      ),
    ].join("\n")
    : "";

  if (config.out) {
    await Deno.mkdir(config.out, { recursive: true });
    const when = started.toISOString().slice(0, 16).replace("T", " ");
    await Deno.writeTextFile(
      `${config.out}/bench.md`,
      `Training step of the \`cpu\` preset (dense, ${TOKENS} tokens a step), every engine and ` +
        `PyTorch CPU eager in one run: ${config.rounds} interleaved rounds of ` +
        `${config.stepsPerRound} steps after ${config.warmup} untimed ones (reference: one step ` +
        `in each of the first ${config.referenceRounds} rounds); medians.\n\n` +
        `Measured ${when} UTC on ${navigator.hardwareConcurrency} CPU threads ` +
        `(${Deno.build.os}/${Deno.build.arch}), a machine SHARED with other jobs: absolute ` +
        `figures vary from run to run; the ratios are what this run shows.\n\n${table}\n` +
        (notes.length ? `\n${notes.join("\n")}\n` : "") +
        (methodTable
          ? `\nEvery method, CPU backend and software WebGPU interleaved (2 untimed, then 3 ` +
            `rounds of 2 steps each; medians), same run, after the comparison:\n\n` +
            `${methodTable}\n`
          : ""),
    );
    await Deno.writeTextFile(
      `${config.out}/bench.json`,
      JSON.stringify(
        {
          date: started.toISOString(),
          config,
          tokensPerStep: TOKENS,
          engines: rows,
          stepMs: Object.fromEntries(times),
          methods: methodRows,
          notes,
        },
        null,
        1,
      ) + "\n",
    );
    console.log(`wrote ${config.out}/bench.md, bench.json`);
  }
}

if (import.meta.main) await runCli(main);
