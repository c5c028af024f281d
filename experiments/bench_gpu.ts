/**
 * GPU benchmark of the sparse kernels (P1 speed tables, P2 Table 10 kernel figures): every kernel
 * of `gpu/kernels/` at GPT-2 FFN shapes as time per call and GB/s against the device's copy
 * bandwidth measured in the same run; the dense matmul variants and the 2:4 compressed sparse
 * matmul as TFLOP/s at `T = 8192`, as ratios against the best dense variant of the same run; the
 * transposable-mask search time. Timing (`_bench.ts`) and baselines: SPEC §11.6.
 *
 * What to expect: the element-wise kernels are memory-bound (GB/s near the vec4 copy's); the WGSL
 * sparse matmul has no sparse tensor cores, so its rate is a ratio against the same-run dense WGSL
 * matmuls, not vendor libraries (P1/P2 report 1.3–1.6× on sparse tensor cores for whole FFN layers).
 * `--torch=FILE` (`torch_baseline.py`'s JSON from the same machine) adds PyTorch's ceilings.
 *
 * Usage:
 *   deno task bench:gpu                          # full GPT-2 shapes (a real GPU)
 *   deno task bench:gpu --quick                  # small shapes (software adapter)
 *   deno task bench:gpu --quick --out=results/bench_gpu.md
 *   deno task bench:gpu --only='prune|matmul' --batches=5 --timer=wall --torch=torch_baseline.json
 *
 * @module
 */

import { encodeCompress24, encodeDecompress24 } from "../gpu/kernels/compress.ts";
import { encodeFlipCount } from "../gpu/kernels/flip_rate.ts";
import { encodeQuantizeFp8 } from "../gpu/kernels/fp8.ts";
import {
  encodeGeglu,
  encodeGegluBackward,
  encodeSwiglu,
  encodeSwigluBackward,
} from "../gpu/kernels/gated.ts";
import { encodeMaskedDecay } from "../gpu/kernels/masked_decay.ts";
import { encodeCopyVec4 } from "../gpu/kernels/copy.ts";
import {
  encodeMatmul,
  type EncodeMatmulOptions,
  TILING_128,
  TILING_64,
} from "../gpu/kernels/matmul.ts";
import { encodeMvue24 } from "../gpu/kernels/mvue.ts";
import { encodePruneNM } from "../gpu/kernels/prune.ts";
import { encodeSoftThreshold24, encodeSsteSums } from "../gpu/kernels/soft_threshold.ts";
import { encodeSparseMatmul24 } from "../gpu/kernels/sparse_matmul.ts";
import { encodeTransposableMask24 } from "../gpu/kernels/transposable.ts";
import { describeAdapter, GpuRuntime } from "../gpu/runtime.ts";
import { assertInt, assertOneOf, parseConfig, runCli } from "./_config.ts";
import { seededFloats } from "../reference/testing.ts";
import {
  BatchTimer,
  boundCell,
  gbPerS,
  gflopPerS,
  measureLatency,
  ms,
  num,
  ratio,
  type Roofline,
  type TimerConfig,
  type Timing,
} from "./_bench.ts";

// ---- configuration ------------------------------------------------------------------------------
interface BenchConfig extends TimerConfig {
  /**
   * The FFN shapes: weights `[rows, cols]` for the element-wise kernels, and the same pairs as
   * linear layers `[in, out]` for the matmuls.
   */
  shapes: [number, number][];
  /** Tokens `T` of the matmul input `X [T, in]`. */
  tokens: number;
  /** Bytes of the copy-bandwidth buffers. */
  copyBytes: number;
}

const MiB = 2 ** 20, GiB = 2 ** 30;

const FULL: BenchConfig = {
  shapes: [[768, 3072], [3072, 768], [1024, 4096], [4096, 4096]],
  tokens: 8192,
  batches: 3,
  warmup: 2,
  latencyFactor: 50,
  minBatchMs: 200,
  maxReps: 100_000,
  chunkBytes: 2 * GiB,
  rotateBytes: 128 * MiB,
  maxSets: 8,
  copyBytes: 256 * MiB,
};

// The smoke-test sizes; the batching rule (batches, minBatchMs, maxSets) stays FULL's.
const QUICK: BenchConfig = {
  ...FULL,
  shapes: [[64, 256], [256, 64], [256, 1024]],
  tokens: 128,
  warmup: 1,
  latencyFactor: 20,
  maxReps: 20_000,
  chunkBytes: 64 * MiB,
  rotateBytes: 8 * MiB,
  copyBytes: 16 * MiB,
};

/** Uniform values in `(-scale, scale)` from the seeded generator (Philox). */
function randomBuffer(rt: GpuRuntime, n: number, seed: number, scale = 1): GPUBuffer {
  return rt.upload(seededFloats(n, seed, (u) => scale * (u * 2 - 1)));
}

/** A 0/1 mask (as float32) from the same seeded generator as {@linkcode randomBuffer}. */
function maskBuffer(rt: GpuRuntime, n: number, seed: number): GPUBuffer {
  return rt.upload(seededFloats(n, seed, (u) => (u < 0.5 ? 0 : 1)));
}

interface Row {
  kernel: string;
  shape: string;
  t: Timing;
  /** Achieved bandwidth (GB/s) or throughput (TFLOP/s) and its ratio to the same-run baseline. */
  figures: string;
  formula: string;
  /** The limiting side of the roofline and the share of its bound reached (`boundCell`). */
  bound: string;
}

/** PyTorch figures from `torch_baseline.py` on the same machine (optional). */
interface TorchBaseline {
  device?: string;
  copy_GBps?: number;
  matmul_fp32_4096_TFLOPs?: number;
}

// ---- one run: its runtime, timer, rows and report -------------------------------------------------
/** What the sections of one run share, and its Markdown report. */
class BenchRun {
  readonly memoryRows: Row[] = [];
  readonly matmulRows: Row[] = [];
  /** The largest transposable-mask search timed. */
  search = { n: 0, ms: 0, shape: "" };
  copyLine = "";
  torchLines: string[] = [];
  vec4GBs = NaN;
  copyGBs = NaN;
  /** The float32 matmul ceiling (PyTorch's, from `--torch`), NaN when not given. */
  fp32Tflops = NaN;

  constructor(
    readonly rt: GpuRuntime,
    readonly cfg: BenchConfig,
    readonly timer: BatchTimer,
    readonly mode: string,
    readonly latencyLine: string,
    readonly timerNote: string,
    readonly only: RegExp | null,
    readonly out: string | undefined,
  ) {}

  /** The ceilings rows state their bound against: the vec4 copy and `fp32Tflops`. */
  roofline(): Roofline {
    return { tflops: this.fp32Tflops, gbps: this.vec4GBs };
  }

  /** Whether `--only` selects this kernel and shape. */
  wanted(kernel: string, shape: string): boolean {
    return !this.only || this.only.test(`${kernel} ${shape}`);
  }

  /** Prints one row. */
  log(row: Row): void {
    console.log(
      `${row.kernel.padEnd(28)} ${row.shape.padEnd(16)} ${ms(row.t.ms).padStart(8)} ms ` +
        `(wall ${ms(row.t.wallMs)}, host ${
          ms(row.t.hostMs)
        }, R ${row.t.reps})  ${row.figures}  [${row.formula}; ${row.bound}]`,
    );
  }

  /** Times a memory-bound kernel moving `bytes` per call; its row shows GB/s against vec4 copy. */
  async bandwidth(
    kernel: string,
    shape: string,
    bytes: number,
    formula: string,
    call: (i: number) => GPUBuffer[],
  ): Promise<Timing | null> {
    if (!this.wanted(kernel, shape)) return null;
    const t = await this.timer.measure(call);
    const rate = gbPerS(bytes, t.ms);
    const row: Row = {
      kernel,
      shape,
      t,
      figures: `${num(rate)} GB/s (${((100 * rate) / this.vec4GBs).toFixed(0)}% of vec4 copy)`,
      formula,
      bound: boundCell(t.ms, 0, bytes, this.roofline()),
    };
    this.memoryRows.push(row);
    this.log(row);
    await this.writeReport(false);
    return t;
  }

  #head(): string {
    return `| kernel | shape | ms/call (${this.timer.timer}) | wall-clock ms/call | host ms/call | ` +
      `calls/batch | achieved | formula | bound |\n|---|---|---:|---:|---:|---:|---|---|---|`;
  }

  #table(rows: Row[]): string {
    return rows.map((r) =>
      `| ${r.kernel} | ${r.shape} | ${ms(r.t.ms)}${
        r.t.timer === this.timer.timer ? "" : " (wall)"
      } | ${ms(r.t.wallMs)} | ${
        ms(r.t.hostMs)
      } | ${r.t.reps} | ${r.figures} | ${r.formula} | ${r.bound} |`
    ).join("\n");
  }

  /** Writes the Markdown report to `--out` (if given), marked incomplete until `finished`. */
  async writeReport(finished: boolean): Promise<void> {
    if (!this.out) return;
    const capital = (line: string) => line[0].toUpperCase() + line.slice(1);
    const notes = [
      `Date: ${new Date().toISOString()}`,
      `Adapter: ${describeAdapter(this.rt.adapter)}`,
      capital(this.latencyLine),
      `Timing: ${this.timerNote}; each figure is one batch's time over its R calls, the median of ` +
      `${this.cfg.batches} batches. R is chosen per kernel so a batch takes at least ` +
      `${
        ms(this.timer.targetMs)
      } ms (max(${this.cfg.latencyFactor} × latency, ${this.cfg.minBatchMs} ms)) of ` +
      `GPU work, or of host recording where the host is slower; the calls are recorded back to ` +
      `back into submissions of at most ${this.cfg.chunkBytes / MiB} MiB of allocations, then ` +
      `synced once`,
      `"Wall-clock" is (batch − trivial-dispatch latency) / R; "host" is the time spent ` +
      `recording and submitting per call (above the GPU time: host-bound)`,
      `Inputs rotate among 2–${this.cfg.maxSets} sets spanning at least ` +
      `${this.cfg.rotateBytes / MiB} MiB, so the cache is not what is measured`,
      ...(this.timer.rejections.length
        ? [
          `Timestamps rejected in ${this.timer.rejections.length} batches (those figures use the ` +
          `wall clock, marked "(wall)"): ${this.timer.rejections.slice(0, 3).join("; ")}`,
        ]
        : []),
      capital(this.copyLine),
      ...this.torchLines,
      ...(this.search.shape
        ? [`Transposable 2:4 mask search: ${ms(this.search.ms)} ms for ${this.search.shape}`]
        : []),
      "N = rows × cols; bytes assume each input read and each output written once (float32)",
    ];
    const md = `# GPU kernel benchmark (${this.mode}${finished ? "" : ", incomplete"})

${notes.map((l) => `- ${l}`).join("\n")}

## Memory-bound kernels

${this.#head()}
${this.#table(this.memoryRows)}

## Matmuls (Y = X·Wᵀ, X [T, in], W [out, in], T = ${this.cfg.tokens})

${this.#head()}
${this.#table(this.matmulRows)}
`;
    await Deno.writeTextFile(this.out, md);
  }
}

// ---- sections -----------------------------------------------------------------------------------
/** Copy bandwidth, the ceiling of every memory-bound kernel (bytes read + written), rotating
 * between two source/destination pairs; sets `run.vec4GBs` and `run.copyLine`. */
async function measureCopyBandwidth(run: BenchRun): Promise<void> {
  const { rt, cfg, timer } = run;
  const copyFloats = cfg.copyBytes / 4, quads = copyFloats / 4;
  const srcs = [randomBuffer(rt, copyFloats, 1), randomBuffer(rt, copyFloats, 11)];
  const dsts = [rt.alloc(cfg.copyBytes), rt.alloc(cfg.copyBytes)];
  const copyT = await timer.measure((i) => {
    rt.copy(srcs[i % 2], dsts[i % 2], cfg.copyBytes);
    return [];
  });
  const vec4T = await timer.measure((i) => {
    encodeCopyVec4(rt, srcs[i % 2], dsts[i % 2], quads);
    return [];
  });
  for (const b of [...srcs, ...dsts]) rt.free(b);
  const copyGBs = gbPerS(2 * cfg.copyBytes, copyT.ms),
    vec4GBs = gbPerS(2 * cfg.copyBytes, vec4T.ms);
  run.vec4GBs = vec4GBs;
  run.copyGBs = copyGBs;
  const mib = cfg.copyBytes / MiB;
  run.copyLine =
    `copy bandwidth (2 × ${mib} MiB / time): buffer-to-buffer copy ${num(copyGBs)} GB/s (${
      ms(copyT.ms)
    } ms; wall clock ${num(gbPerS(2 * cfg.copyBytes, copyT.wallMs))} GB/s), ` +
    `vec4 copy kernel ${num(vec4GBs)} GB/s (${ms(vec4T.ms)} ms; wall clock ${
      num(gbPerS(2 * cfg.copyBytes, vec4T.wallMs))
    } GB/s); ${copyT.reps} and ${vec4T.reps} copies per batch`;
  console.log(run.copyLine);
}

/** The element-wise sparse kernels on one weight shape, each as GB/s against the vec4 copy. */
async function benchMemoryKernels(run: BenchRun, rows: number, cols: number): Promise<void> {
  const { rt, timer } = run;
  const n = rows * cols, h = cols / 2;
  const shape = `${rows}×${cols}`;
  const setCount = timer.sets(4 * n); // every input is at least 4N bytes but dy (2N)
  const sets = Array.from({ length: setCount }, (_, s) => {
    const seed = 100 * s;
    const w = randomBuffer(rt, n, seed + 2), g = randomBuffer(rt, n, seed + 3);
    const m1 = maskBuffer(rt, n, seed + 4), m2 = maskBuffer(rt, n, seed + 5);
    const dy = randomBuffer(rt, rows * h, seed + 6);
    const pruned = encodePruneNM(rt, w, rows, cols, 2, 4); // a 2:4 matrix to compress
    const comp = encodeCompress24(rt, pruned.pruned, rows, cols);
    return { w, g, m1, m2, dy, pruned, comp };
  });
  const set = (i: number) => sets[i % setCount];
  const prune = (kernel: string, nKeep: number, mGroup: number, formula: string) =>
    run.bandwidth(kernel, shape, 12 * n, formula, (i) => {
      const o = encodePruneNM(rt, set(i).w, rows, cols, nKeep, mGroup);
      return [o.pruned, o.mask];
    });
  await prune("prune 2:4", 2, 4, "4N read + 8N write");
  await prune("prune 1:4", 1, 4, "4N + 8N");
  await prune("prune 2:8", 2, 8, "4N + 8N");
  await run.bandwidth("softThreshold24", shape, 12 * n, "4N + 8N", (i) => {
    const o = encodeSoftThreshold24(rt, set(i).w, rows, cols);
    return [o.pruned, o.mask];
  });
  await run.bandwidth(
    "ssteScale sums",
    shape,
    8 * n,
    "2 passes × 4N",
    (i) => [encodeSsteSums(rt, set(i).w, rows, cols)],
  );
  const searchT = await run.bandwidth(
    "transposableMask24",
    shape,
    12.25 * n,
    "4N + 8N + N/4",
    (i) => {
      const o = encodeTransposableMask24(rt, set(i).w, rows, cols);
      return [o.pruned, o.mask, o.indices];
    },
  );
  if (searchT && n > run.search.n) run.search = { n, ms: searchT.ms, shape };
  await run.bandwidth(
    "mvue24",
    shape,
    8 * n,
    "4N + 4N",
    (i) => [encodeMvue24(rt, set(i).g, rows, cols, 7, 0)],
  );
  await run.bandwidth("maskedDecay", shape, 16 * n, "12N + 4N", (i) => {
    const s = set(i);
    return [encodeMaskedDecay(rt, s.g, s.w, s.m1, n, 6e-5)];
  });
  await run.bandwidth("flipCount", shape, 8 * n, "8N", (i) => {
    const s = set(i);
    return [encodeFlipCount(rt, { prev: s.m1, next: s.m2, size: n })];
  });
  await run.bandwidth("quantizeFp8 e4m3", shape, 12 * n, "amax 4N + 4N + 4N", (i) => {
    const o = encodeQuantizeFp8(rt, { x: set(i).g, size: n }, { format: "e4m3" });
    return [o.dequantized, o.scale];
  });
  await run.bandwidth("quantizeFp8 e5m2 + codes", shape, 13 * n, "amax 4N + 4N + 4N + N", (i) => {
    const o = encodeQuantizeFp8(rt, { x: set(i).g, size: n }, { format: "e5m2", codes: true });
    return [o.dequantized, o.scale, o.codes!];
  });
  await run.bandwidth("compress24", shape, 6.125 * n, "4N + 2N + N/8", (i) => {
    const o = encodeCompress24(rt, set(i).pruned.pruned, rows, cols);
    return [o.values, o.meta];
  });
  await run.bandwidth("decompress24", shape, 6.125 * n, "2N + N/8 + 4N", (i) => {
    const c = set(i).comp;
    return [encodeDecompress24(rt, c.values, c.meta, rows, cols)];
  });
  // Gated activations with the matrix as the [T, 2h] input (T = rows, h = cols / 2).
  const gated = [
    ["geglu", encodeGeglu, encodeGegluBackward],
    ["swiglu", encodeSwiglu, encodeSwigluBackward],
  ] as const;
  for (const layout of ["row-major", "column-major"] as const) {
    const tag = layout === "row-major" ? "row" : "col";
    for (const [name, forward, backward] of gated) {
      await run.bandwidth(
        `${name} ${tag}`,
        shape,
        6 * n,
        "4N + 2N",
        (i) => [forward(rt, set(i).g, rows, h, { layout })],
      );
      await run.bandwidth(`${name}Backward ${tag}`, shape, 10 * n, "4N + 2N + 4N", (i) => {
        const s = set(i);
        return [backward(rt, s.g, s.dy, rows, h, { layout })];
      });
    }
  }
  for (const s of sets) {
    const { w, g, m1, m2, dy, pruned, comp } = s;
    for (const b of [w, g, m1, m2, dy, pruned.pruned, pruned.mask, comp.values, comp.meta]) {
      rt.free(b);
    }
  }
  await rt.sync();
}

const DENSE: [string, EncodeMatmulOptions, string][] = [
  ["dense matmul naive", { variant: "naive" }, "2·T·in·out"],
  ["dense matmul register", { variant: "register" }, "2·T·in·out (incl. K-major repacks)"],
  ["dense matmul tiled 64", { variant: "tiled", tiling: TILING_64 }, "2·T·in·out"],
  ["dense matmul tiled 128", { variant: "tiled", tiling: TILING_128 }, "2·T·in·out"],
];

const BYTES_DENSE = "4·(T·in + in·out + T·out) B";

/** The dense matmul variants and the 2:4 sparse matmul on one linear layer, as TFLOP/s. */
async function benchMatmuls(run: BenchRun, inDim: number, outDim: number): Promise<void> {
  const { rt, cfg, timer } = run;
  const T = cfg.tokens;
  const shape = `${T}×${inDim}→${outDim}`;
  const flops = 2 * T * inDim * outDim;
  const tflops = (msPerCall: number) => gflopPerS(flops, msPerCall) / 1e3;
  // Each operand read and C written once; the sparse W is 2 bytes per entry of values plus 4 bits
  // of metadata per group of four.
  const bytes = 4 * (T * inDim + outDim * inDim + T * outDim);
  const sparseBytes = 4 * T * inDim + 2 * outDim * inDim + (outDim * inDim) / 8 + 4 * T * outDim;
  const setCount = timer.sets(4 * (T * inDim + outDim * inDim));
  const sets = Array.from({ length: setCount }, (_, s) => {
    const x = randomBuffer(rt, T * inDim, 100 * s + 8);
    const w = randomBuffer(rt, outDim * inDim, 100 * s + 9);
    const pruned = encodePruneNM(rt, w, outDim, inDim, 2, 4);
    const comp = encodeCompress24(rt, pruned.pruned, outDim, inDim);
    return { x, w, pruned, comp };
  });
  const set = (i: number) => sets[i % setCount];
  const dims = { batch: 1, m: T, n: outDim, k: inDim, transA: false, transB: true };
  const dense: Row[] = [];
  for (const [kernel, options, formula] of DENSE) {
    if (!run.wanted(kernel, shape)) continue;
    const t = await timer.measure((i) => [encodeMatmul(rt, set(i).x, set(i).w, dims, options)]);
    const bound = boundCell(t.ms, flops, bytes, run.roofline());
    const figures = `${num(tflops(t.ms))} TFLOP/s`;
    dense.push({ kernel, shape, t, figures, formula: `${formula}; ${BYTES_DENSE}`, bound });
  }
  const best = dense.length ? Math.min(...dense.map((r) => r.t.ms)) : NaN;
  for (const row of dense) {
    row.figures += `; ${ratio(best, row.t.ms)} best dense`;
    run.matmulRows.push(row);
    run.log(row);
  }
  if (run.wanted("2:4 sparse matmul", shape)) {
    const t = await timer.measure((i) => {
      const c = set(i).comp;
      return [encodeSparseMatmul24(rt, set(i).x, c.values, c.meta, { tokens: T, inDim, outDim })];
    });
    const row: Row = {
      kernel: "2:4 sparse matmul",
      shape,
      t,
      figures: `${num(tflops(t.ms))} TFLOP/s dense-equivalent, ${
        num(tflops(t.ms) / 2)
      } effective; ${ratio(best, t.ms)} best dense`,
      formula: "2·T·in·out (effective T·in·out); 4·T·in + 2.125·in·out + 4·T·out B",
      bound: boundCell(t.ms, flops / 2, sparseBytes, run.roofline()),
    };
    run.matmulRows.push(row);
    run.log(row);
  }
  await run.writeReport(false);
  for (const { x, w, pruned, comp } of sets) {
    for (const b of [x, w, pruned.pruned, pruned.mask, comp.values, comp.meta]) rt.free(b);
  }
  await rt.sync();
}

// ---- main ---------------------------------------------------------------------------------------
/** Command-line options (`--key=value`, checked by `_config.ts` before any work). */
const OPTIONS = {
  /** Small shapes, for the software adapter. */
  quick: false,
  /** Also write the Markdown report here (empty: print only). */
  out: "",
  /** A regular expression over "kernel shape": run only the matching rows (empty: all). */
  only: "",
  /** `torch_baseline.py`'s JSON from the same machine (empty: none). */
  torch: "",
  /** `auto` (GPU timestamps where the device has them) or `wall` (wall clock). */
  timer: "auto",
  /** Timed batches per figure (0: the preset's). */
  batches: 0,
};

/** The `--only` pattern. @throws {TypeError} If it is not a regular expression. */
function onlyPattern(source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (e) {
    throw new TypeError(`Bad value for --only: ${(e as Error).message}`);
  }
}

async function main(args: string[]): Promise<void> {
  const values = parseConfig(OPTIONS, args);
  const timerMode = assertOneOf("timer", values.timer, ["auto", "wall"] as const);
  assertInt("batches", values.batches, 0);
  const cfg = { ...(values.quick ? QUICK : FULL) };
  if (values.batches > 0) cfg.batches = values.batches;
  const only = values.only ? onlyPattern(values.only) : null;
  const torch: TorchBaseline | null = values.torch
    ? JSON.parse(await Deno.readTextFile(values.torch))
    : null;
  const rt = await GpuRuntime.create(); // no adapter: runCli prints the reason, exit 1
  const started = performance.now();
  const mode = values.quick ? "quick" : "full";
  console.log(`bench_gpu: adapter "${describeAdapter(rt.adapter)}", ${mode} run`);

  const latency = await measureLatency(rt);
  const useTimestamps = rt.features.timestamp && timerMode === "auto";
  const timer = new BatchTimer(rt, cfg, latency.trivialDispatch, useTimestamps);
  const timerNote = useTimestamps
    ? "GPU timestamps at the beginning and end of each submission's compute pass"
    : `wall clock minus the round-trip latency (${
      rt.features.timestamp ? "--timer=wall" : "the device has no timestamp-query"
    })`;
  const latencyLine = `round-trip latency (median of 15): empty sync ${
    ms(latency.emptySync)
  } ms, trivial dispatch + sync ${ms(latency.trivialDispatch)} ms, 4-byte read-back ${
    ms(latency.readBack)
  } ms`;
  console.log(latencyLine);
  console.log(
    `timing: ${timerNote}; batches of ≥ ${ms(timer.targetMs)} ms = max(${cfg.latencyFactor} × ` +
      `latency, ${cfg.minBatchMs} ms) of GPU work (or of host recording where slower), median ` +
      `of ${cfg.batches}`,
  );

  const run = new BenchRun(
    rt,
    cfg,
    timer,
    mode,
    latencyLine,
    timerNote,
    only,
    values.out || undefined,
  );
  await measureCopyBandwidth(run);
  const torchLines = run.torchLines;
  run.fp32Tflops = torch?.matmul_fp32_4096_TFLOPs ?? NaN;
  if (torch?.copy_GBps) {
    torchLines.push(
      `PyTorch device copy ${num(torch.copy_GBps)} GB/s: the vec4 copy kernel reaches ${
        num((100 * run.vec4GBs) / torch.copy_GBps)
      }% of it, the buffer copy ${num((100 * run.copyGBs) / torch.copy_GBps)}%`,
    );
  }
  if (torch?.matmul_fp32_4096_TFLOPs) {
    torchLines.push(
      `PyTorch fp32 matmul 4096³: ${num(torch.matmul_fp32_4096_TFLOPs)} TFLOP/s`,
    );
  }
  for (const line of torchLines) console.log(line);

  for (const [rows, cols] of cfg.shapes) await benchMemoryKernels(run, rows, cols);
  for (const [inDim, outDim] of cfg.shapes) await benchMatmuls(run, inDim, outDim);
  if (run.search.shape) {
    console.log(`transposable 2:4 mask search: ${ms(run.search.ms)} ms for ${run.search.shape}`);
  }
  if (timer.rejections.length) {
    console.log(
      `timestamps rejected in ${timer.rejections.length} batches (wall clock used there): ` +
        timer.rejections.slice(0, 3).join("; "),
    );
  }
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await run.writeReport(true);
  if (values.out) console.log(`wrote ${values.out}`);
  timer.destroy();
  rt.destroy();
}

if (import.meta.main) await runCli(main);
