/**
 * GPU benchmark of the sparse kernels (P1 speed tables, P2 Table 10 kernel figures), a small kernel
 * zoo: every kernel of `gpu/kernels/` at GPT-2 FFN shapes as time per call and achieved GB/s (the
 * byte formula beside it) next to the device's copy bandwidth measured in the same run (a
 * buffer-to-buffer copy and a vec4 copy kernel); the dense matmul versions (naive, register, tiled
 * 64, tiled 128) and the 2:4 compressed sparse matmul as TFLOP/s at the FFN shapes (`T = 8192`),
 * each as a ratio against the best dense version of the same run; and the transposable-mask search
 * time.
 *
 * Timing method. One host round trip (submit, then wait for the queue) costs a fixed latency,
 * about 12 ms with Deno's WebGPU (it polls), so a kernel timed between two syncs measures that
 * latency and not the kernel. The script first measures the round trip (nothing submitted, a
 * trivial dispatch, a 4-byte read-back) and prints it. Every figure then comes from batches of `R`
 * calls recorded back to back and submitted in a few submissions (pooled buffers come back only
 * after their submit, so one submission holds at most `chunkBytes` of allocations), followed by
 * one sync. `R` is chosen per kernel from probe batches so that a batch takes at least
 * `max(latencyFactor × latency, minBatchMs)`: of GPU work, or of host recording where the host is
 * the slower side (tiny kernels on a fast GPU). Where the device has `timestamp-query`,
 * each submission's compute pass writes GPU timestamps at its beginning and end, and a batch's time
 * is the union of those intervals (GPU time only: neither the latency nor the host's recording is
 * in it); otherwise, or with `--timer=wall`, it is the batch's wall-clock time minus the trivial
 * dispatch's round trip. The figure is that time over `R`, the median of `batches` batches; the
 * wall-clock figure and the host's recording-and-submit time per call are printed beside it (a
 * host time above the GPU time means a training step of such calls is bound by the host). Inputs
 * rotate among several sets whose total exceeds the largest last-level cache (the H100's L2 holds
 * 50 MB, a 768×3072 float32 tensor 9 MB), so repeated calls do not measure the cache.
 *
 * What to expect: the element-wise sparse kernels are memory-bound, so their GB/s should approach
 * the vec4-copy figure and time per call should grow in proportion to the size; the transposable
 * search does ~90 pattern scores per 16 entries and may be compute-bound; the WGSL sparse matmul is
 * a plain tiled kernel without sparse tensor cores, so its dense-equivalent rate is a ratio against
 * the same-run dense WGSL matmuls, not against vendor libraries (P1/P2 report 1.3–1.6× on sparse
 * tensor cores for whole FFN layers). `--torch=FILE` (the JSON of `torch_baseline.py` from the same
 * machine) adds PyTorch's copy and matmul ceilings to the header.
 *
 * Usage:
 *   deno task bench:gpu                          # full GPT-2 shapes (a real GPU)
 *   deno task bench:gpu --quick                  # small shapes (software adapter)
 *   deno task bench:gpu --quick --out=results/bench_gpu.md
 *   deno task bench:gpu --only='prune|matmul' --batches=5 --timer=wall --torch=torch_baseline.json
 *
 * @module
 */

import { parseArgs } from "node:util";
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
import {
  grid,
  GRID_BUILTINS,
  LINEAR_WORKGROUP,
  packParams,
  WG_1D,
} from "../gpu/kernels/_params.ts";
import { GpuRuntime, type KernelSpec, WebGpuUnavailableError } from "../gpu/runtime.ts";
import { seededFloats } from "../reference/testing.ts";

// ---- configuration ------------------------------------------------------------------------------
interface BenchConfig {
  /** Weight shapes `[rows, cols]` for the element-wise kernels. */
  shapes: [number, number][];
  /** Linear layers `[in, out]` for the matmuls. */
  layers: [number, number][];
  /** Tokens `T` of the matmul input `X [T, in]`. */
  tokens: number;
  /** Timed batches per figure (the median is reported). */
  batches: number;
  /** Untimed calls before probing (compilation, pool warm-up). */
  warmup: number;
  /** A batch holds at least this many times the measured round-trip latency of GPU work... */
  latencyFactor: number;
  /** ...and at least this many milliseconds. */
  minBatchMs: number;
  /** Most calls in one batch (bounds the host's recording time for tiny kernels). */
  maxReps: number;
  /** Most bytes of pooled allocations recorded into one submission. */
  chunkBytes: number;
  /** Input sets of one shape span at least this many bytes (above the last-level cache)... */
  rotateBytes: number;
  /** ...with at least 2 and at most this many sets. */
  maxSets: number;
  /** Bytes of the copy-bandwidth buffers. */
  copyBytes: number;
}

const FULL: BenchConfig = {
  shapes: [[768, 3072], [3072, 768], [1024, 4096], [4096, 4096]],
  layers: [[768, 3072], [3072, 768], [1024, 4096], [4096, 4096]],
  tokens: 8192,
  batches: 3,
  warmup: 2,
  latencyFactor: 50,
  minBatchMs: 200,
  maxReps: 100_000,
  chunkBytes: 2 * 1024 ** 3,
  rotateBytes: 128 * 1024 ** 2,
  maxSets: 8,
  copyBytes: 256 * 1024 ** 2,
};

const QUICK: BenchConfig = {
  shapes: [[64, 256], [256, 64], [256, 1024]],
  layers: [[64, 256], [256, 64], [256, 1024]],
  tokens: 128,
  batches: 3,
  warmup: 1,
  latencyFactor: 20,
  minBatchMs: 200,
  maxReps: 20_000,
  chunkBytes: 64 * 1024 ** 2,
  rotateBytes: 8 * 1024 ** 2,
  maxSets: 8,
  copyBytes: 16 * 1024 ** 2,
};

/** A query set holds at most 4096 timestamps: two per submission. */
const MAX_SUBMITS = 2048;
/** Most calls recorded into one submission, so the GPU starts while the host records the rest. */
const MAX_CALLS_PER_SUBMIT = 4096;
/** Probe batches grow until they hold this much GPU work (timestamps) or latency (wall clock). */
const PROBE_MS = 2;

// ---- measurement --------------------------------------------------------------------------------
/** Three significant digits (no exponent for the ranges printed here). */
function num(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

/** Milliseconds with four significant digits. */
function ms(v: number): string {
  return v >= 1000 ? v.toFixed(0) : v.toPrecision(4);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Bytes that `fn` allocates from the runtime's pool (outputs and scratch alike). */
function allocatedBytes(rt: GpuRuntime, fn: () => void): number {
  let bytes = 0;
  const alloc = rt.alloc;
  rt.alloc = (n: number) => {
    bytes += n;
    return alloc.call(rt, n);
  };
  try {
    fn();
  } finally {
    rt.alloc = alloc;
  }
  return bytes;
}

/** A kernel that writes one word: the least work a dispatch can do. */
const TRIVIAL_SPEC: KernelSpec = {
  key: "bench-trivial",
  code: `@group(0) @binding(0) var<storage, read_write> d: array<u32>;
@compute @workgroup_size(1)
fn main() { d[0] = 1u; }
`,
};

/** Median round-trip latencies in milliseconds. */
interface Latency {
  /** `rt.sync()` with nothing recorded (`onSubmittedWorkDone` alone). */
  emptySync: number;
  /** One trivial dispatch, submitted, then `rt.sync()`: subtracted from wall-clock batches. */
  trivialDispatch: number;
  /** A 4-byte read-back (`mapAsync`). */
  readBack: number;
}

async function measureLatency(rt: GpuRuntime, samples = 15): Promise<Latency> {
  const word = rt.alloc(4);
  const time = async (fn: () => Promise<unknown>) => {
    await fn(); // warm-up (compilation, staging buffer)
    const out: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await fn();
      out.push(performance.now() - t0);
    }
    return median(out);
  };
  const emptySync = await time(() => rt.sync());
  const trivialDispatch = await time(() => {
    rt.dispatch(TRIVIAL_SPEC, [word], [1]);
    return rt.sync();
  });
  const readBack = await time(() => rt.read(word, 4));
  rt.free(word);
  return { emptySync, trivialDispatch, readBack };
}

/** One figure: time per call and how it was obtained. */
interface Timing {
  /** Milliseconds per call: GPU timestamps where valid, else the wall-clock figure. */
  ms: number;
  /** Wall-clock milliseconds per call, `(T_batch − T_latency) / R`. */
  wallMs: number;
  /** Host milliseconds per call spent recording and submitting. */
  hostMs: number;
  /** Calls per timed batch (`R`). */
  reps: number;
  /** Which clock gave `ms`. */
  timer: "timestamps" | "wall clock";
}

interface Batch {
  wallMs: number;
  hostMs: number;
  /** Union of the submissions' GPU intervals; null without (valid) timestamps. */
  gpuMs: number | null;
}

/** Times kernels by batches of back-to-back calls (see the module documentation). */
class BatchTimer {
  readonly latencyMs: number;
  readonly targetMs: number;
  /** Why timestamps were rejected for a batch (then that figure uses the wall clock). */
  readonly rejections: string[] = [];
  #rt: GpuRuntime;
  #cfg: BenchConfig;
  #querySet: GPUQuerySet | null = null;
  #resolve: GPUBuffer | null = null;
  #readBack: GPUBuffer | null = null;
  /** Calls made so far: the rotation index handed to each call. */
  #calls = 0;
  /** Calls per submission the pool has been filled for, per measurement. */
  #filled = 0;

  constructor(rt: GpuRuntime, cfg: BenchConfig, latencyMs: number, timestamps: boolean) {
    this.#rt = rt;
    this.#cfg = cfg;
    this.latencyMs = latencyMs;
    this.targetMs = Math.max(cfg.latencyFactor * latencyMs, cfg.minBatchMs);
    if (timestamps) {
      const count = 2 * MAX_SUBMITS;
      this.#querySet = rt.device.createQuerySet({ type: "timestamp", count });
      this.#resolve = rt.device.createBuffer({
        size: 8 * count,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      this.#readBack = rt.device.createBuffer({
        size: 8 * count,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    }
  }

  /** The clock the figures come from. */
  get timer(): Timing["timer"] {
    return this.#querySet ? "timestamps" : "wall clock";
  }

  /**
   * Times `run`, which records one call given its rotation index and returns the buffers it
   * allocated (freed after the call's submission).
   */
  async measure(run: (i: number) => GPUBuffer[]): Promise<Timing> {
    const rt = this.#rt, cfg = this.#cfg;
    const once = () => {
      for (const b of run(this.#calls++)) rt.free(b);
    };
    const bytesPerCall = allocatedBytes(rt, once); // the first warm-up call
    for (let i = 1; i < cfg.warmup; i++) once();
    await rt.sync();
    this.#filled = 1;
    const perSubmit = Math.max(
      1,
      Math.min(MAX_CALLS_PER_SUBMIT, Math.floor(cfg.chunkBytes / Math.max(1, bytesPerCall))),
    );
    const maxReps = Math.min(cfg.maxReps, perSubmit * MAX_SUBMITS);

    // Probe: grow R until the batch holds enough work to extrapolate from.
    // The batch then takes the target time on the slower of the two sides: the GPU, or the host
    // recording the calls (tiny kernels on a fast GPU), whose time bounds R too.
    let reps = 1, perCall: number;
    for (;;) {
      const b = await this.#batch(once, reps, perSubmit);
      const work = b.gpuMs ?? Math.max(0, b.wallMs - this.latencyMs);
      const enough = b.gpuMs !== null ? PROBE_MS : Math.max(PROBE_MS, this.latencyMs);
      if (work >= enough || reps >= maxReps) {
        perCall = Math.max(work, b.hostMs) / reps;
        break;
      }
      reps = Math.min(maxReps, reps * 8);
    }
    reps = Math.max(1, Math.min(maxReps, Math.ceil(this.targetMs / Math.max(perCall, 1e-6))));

    const gpu: (number | null)[] = [], wall: number[] = [], host: number[] = [];
    for (let i = 0; i < cfg.batches; i++) {
      const b = await this.#batch(once, reps, perSubmit);
      gpu.push(b.gpuMs === null ? null : b.gpuMs / reps);
      wall.push(Math.max(0, b.wallMs - this.latencyMs) / reps);
      host.push(b.hostMs / reps);
    }
    const stamped = gpu.every((g) => g !== null);
    const wallMs = median(wall);
    return {
      ms: stamped ? median(gpu as number[]) : wallMs,
      wallMs,
      hostMs: median(host),
      reps,
      timer: stamped ? "timestamps" : "wall clock",
    };
  }

  /** Records `reps` calls, `perSubmit` per submission, then syncs once. */
  async #batch(once: () => void, reps: number, perSubmit: number): Promise<Batch> {
    const rt = this.#rt, querySet = this.#querySet;
    const fill = Math.min(reps, perSubmit);
    if (fill > this.#filled) { // allocate a whole submission's buffers outside the timed batch
      for (let i = 0; i < fill; i++) once();
      this.#filled = fill;
    }
    await rt.sync();
    const submits = Math.ceil(reps / perSubmit);
    let hostMs = 0, done = 0;
    const t0 = performance.now();
    for (let s = 0; s < submits; s++) {
      const h0 = performance.now();
      if (querySet) rt.beginTimestampedPass({ querySet, beginningOfPassWriteIndex: 2 * s });
      const n = Math.min(perSubmit, reps - done);
      for (let i = 0; i < n; i++) once();
      done += n;
      if (querySet) rt.beginTimestampedPass({ querySet, endOfPassWriteIndex: 2 * s + 1 });
      rt.flush();
      hostMs += performance.now() - h0;
    }
    await rt.sync();
    const wallMs = performance.now() - t0;
    const gpuMs = querySet ? await this.#gpuSpan(submits, wallMs) : null;
    return { wallMs, hostMs, gpuMs };
  }

  /**
   * The union of the submissions' `[begin, end]` timestamp intervals in milliseconds (a union, so
   * neither gaps while the host records nor overlaps count), or null if the values are implausible.
   */
  async #gpuSpan(submits: number, wallMs: number): Promise<number | null> {
    const device = this.#rt.device, count = 2 * submits;
    const enc = device.createCommandEncoder();
    enc.resolveQuerySet(this.#querySet!, 0, count, this.#resolve!, 0);
    enc.copyBufferToBuffer(this.#resolve!, 0, this.#readBack!, 0, 8 * count);
    device.queue.submit([enc.finish()]);
    await this.#readBack!.mapAsync(GPUMapMode.READ, 0, 8 * count);
    const stamps = new BigUint64Array(this.#readBack!.getMappedRange(0, 8 * count).slice(0));
    this.#readBack!.unmap();
    const intervals: [bigint, bigint][] = [];
    for (let s = 0; s < submits; s++) {
      const [begin, end] = [stamps[2 * s], stamps[2 * s + 1]];
      if (begin === 0n || end < begin) {
        this.rejections.push(`submission ${s}: begin ${begin} ns, end ${end} ns`);
        return null;
      }
      intervals.push([begin, end]);
    }
    intervals.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let total = 0n, [lo, hi] = intervals[0];
    for (const [b, e] of intervals.slice(1)) {
      if (b > hi) {
        total += hi - lo;
        [lo, hi] = [b, e];
      } else if (e > hi) hi = e;
    }
    total += hi - lo;
    const gpuMs = Number(total) / 1e6;
    if (gpuMs > wallMs) {
      this.rejections.push(
        `GPU span ${gpuMs.toFixed(3)} ms exceeds the batch's wall clock ${wallMs.toFixed(3)} ms`,
      );
      return null;
    }
    return gpuMs;
  }

  /** Number of rotating input sets so that they span `cfg.rotateBytes` (at least 2). */
  sets(bytesPerSet: number): number {
    const wanted = Math.ceil(this.#cfg.rotateBytes / Math.max(1, bytesPerSet));
    return Math.max(2, Math.min(this.#cfg.maxSets, wanted));
  }

  destroy(): void {
    this.#querySet?.destroy();
    this.#resolve?.destroy();
    this.#readBack?.destroy();
  }
}

function vec4CopySpec(): KernelSpec {
  return {
    key: "bench-vec4-copy",
    code: `struct Params { quads: u32 }
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(${WG_1D})
fn main(${GRID_BUILTINS}) {
  let i = ${LINEAR_WORKGROUP} * ${WG_1D}u + lid;
  if (i < p.quads) { dst[i] = src[i]; }
}
`,
  };
}

/** Uniform values in `[-scale, scale)` from a 32-bit LCG (never all zeros). */
function randomBuffer(rt: GpuRuntime, n: number, seed: number, scale = 1): GPUBuffer {
  return rt.upload(seededFloats(n, seed, (u) => scale * (u * 2 - 1)));
}

function maskBuffer(rt: GpuRuntime, n: number, seed: number): GPUBuffer {
  let s = seed >>> 0;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 22695477) + 1) >>> 0;
    data[i] = s >>> 31;
  }
  return rt.upload(data);
}

interface Row {
  kernel: string;
  shape: string;
  t: Timing;
  /** Achieved bandwidth (GB/s) or throughput (TFLOP/s) and its ratio to the same-run baseline. */
  figures: string;
  formula: string;
}

/** PyTorch figures from `torch_baseline.py` on the same machine (optional). */
interface TorchBaseline {
  device?: string;
  copy_GBps?: number;
  matmul_fp32_4096_TFLOPs?: number;
}

// ---- benchmark ----------------------------------------------------------------------------------
async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      out: { type: "string" },
      only: { type: "string" },
      torch: { type: "string" },
      timer: { type: "string", default: "auto" },
      batches: { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  const cfg = { ...(values.quick ? QUICK : FULL) };
  if (values.batches !== undefined) {
    const b = Number(values.batches);
    if (!Number.isInteger(b) || b < 1) {
      throw new RangeError(
        `Bad value for --batches: expected an integer ≥ 1, got ${values.batches}`,
      );
    }
    cfg.batches = b;
  }
  if (values.timer !== "auto" && values.timer !== "wall") {
    throw new TypeError(`Bad value for --timer: expected auto or wall, got ${values.timer}`);
  }
  const only = values.only ? new RegExp(values.only) : null;
  const torch: TorchBaseline | null = values.torch
    ? JSON.parse(await Deno.readTextFile(values.torch))
    : null;
  let rt: GpuRuntime;
  try {
    rt = await GpuRuntime.create();
  } catch (e) {
    if (e instanceof WebGpuUnavailableError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
  const started = performance.now();
  const mode = values.quick ? "quick" : "full";
  console.log(`bench_gpu: adapter "${rt.adapterName}", ${mode} run`);

  const latency = await measureLatency(rt);
  const useTimestamps = rt.features.timestamp && values.timer === "auto";
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

  // Copy bandwidth, the ceiling of every memory-bound kernel (bytes read + written), rotating
  // between two source/destination pairs.
  const copyFloats = cfg.copyBytes / 4, quads = copyFloats / 4;
  const srcs = [randomBuffer(rt, copyFloats, 1), randomBuffer(rt, copyFloats, 11)];
  const dsts = [rt.alloc(cfg.copyBytes), rt.alloc(cfg.copyBytes)];
  const copyT = await timer.measure((i) => {
    rt.copy(srcs[i % 2], dsts[i % 2], cfg.copyBytes);
    return [];
  });
  const vec4T = await timer.measure((i) => {
    rt.dispatch(vec4CopySpec(), [srcs[i % 2], dsts[i % 2]], grid(quads), packParams([quads]));
    return [];
  });
  for (const b of [...srcs, ...dsts]) rt.free(b);
  const gbs = (bytes: number, msPerCall: number) => bytes / msPerCall / 1e6;
  const copyGBs = gbs(2 * cfg.copyBytes, copyT.ms), vec4GBs = gbs(2 * cfg.copyBytes, vec4T.ms);
  const mib = cfg.copyBytes / 2 ** 20;
  const copyLine =
    `copy bandwidth (2 × ${mib} MiB / time): buffer-to-buffer copy ${num(copyGBs)} GB/s (${
      ms(copyT.ms)
    } ms; wall clock ${num(gbs(2 * cfg.copyBytes, copyT.wallMs))} GB/s), ` +
    `vec4 copy kernel ${num(vec4GBs)} GB/s (${ms(vec4T.ms)} ms; wall clock ${
      num(gbs(2 * cfg.copyBytes, vec4T.wallMs))
    } GB/s); ${copyT.reps} and ${vec4T.reps} copies per batch`;
  console.log(copyLine);
  const torchLines: string[] = [];
  if (torch?.copy_GBps) {
    torchLines.push(
      `PyTorch device copy ${num(torch.copy_GBps)} GB/s: the vec4 copy kernel reaches ${
        num((100 * vec4GBs) / torch.copy_GBps)
      }% of it, the buffer copy ${num((100 * copyGBs) / torch.copy_GBps)}%`,
    );
  }
  if (torch?.matmul_fp32_4096_TFLOPs) {
    torchLines.push(
      `PyTorch fp32 matmul 4096³: ${num(torch.matmul_fp32_4096_TFLOPs)} TFLOP/s`,
    );
  }
  for (const line of torchLines) console.log(line);

  const memoryRows: Row[] = [], matmulRows: Row[] = [];
  let searchN = 0, searchMs = 0, searchShape = "";
  const head = (timing: string) =>
    `| kernel | shape | ms/call (${timing}) | wall-clock ms/call | host ms/call | calls/batch | ` +
    `achieved | formula |\n|---|---|---:|---:|---:|---:|---|---|`;
  const table = (rows: Row[]) =>
    rows.map((r) =>
      `| ${r.kernel} | ${r.shape} | ${ms(r.t.ms)}${r.t.timer === timer.timer ? "" : " (wall)"} | ${
        ms(r.t.wallMs)
      } | ${ms(r.t.hostMs)} | ${r.t.reps} | ${r.figures} | ${r.formula} |`
    ).join("\n");
  const writeReport = async (finished: boolean) => {
    if (!values.out) return;
    const capital = (line: string) => line[0].toUpperCase() + line.slice(1);
    const notes = [
      `Date: ${new Date().toISOString()}`,
      `Adapter: ${rt.adapterName}`,
      capital(latencyLine),
      `Timing: ${timerNote}; each figure is one batch's time over its R calls, the median of ` +
      `${cfg.batches} batches. R is chosen per kernel so a batch takes at least ` +
      `${ms(timer.targetMs)} ms (max(${cfg.latencyFactor} × latency, ${cfg.minBatchMs} ms)) of ` +
      `GPU work, or of host recording where the host is slower; the calls are recorded back to ` +
      `back into submissions of at most ${cfg.chunkBytes / 2 ** 20} MiB of allocations, then ` +
      `synced once`,
      `"Wall-clock" is (batch − trivial-dispatch latency) / R; "host" is the time spent ` +
      `recording and submitting per call (above the GPU time: host-bound)`,
      `Inputs rotate among 2–${cfg.maxSets} sets spanning at least ` +
      `${cfg.rotateBytes / 2 ** 20} MiB, so the cache is not what is measured`,
      ...(timer.rejections.length
        ? [
          `Timestamps rejected in ${timer.rejections.length} batches (those figures use the ` +
          `wall clock, marked "(wall)"): ${timer.rejections.slice(0, 3).join("; ")}`,
        ]
        : []),
      capital(copyLine),
      ...torchLines,
      ...(searchShape
        ? [`Transposable 2:4 mask search: ${ms(searchMs)} ms for ${searchShape}`]
        : []),
      "N = rows × cols; bytes assume each input read and each output written once (float32)",
    ];
    const md = `# GPU kernel benchmark (${mode}${finished ? "" : ", incomplete"})

${notes.map((l) => `- ${l}`).join("\n")}

## Memory-bound kernels

${head(timer.timer)}
${table(memoryRows)}

## Matmuls (Y = X·Wᵀ, X [T, in], W [out, in], T = ${cfg.tokens})

${head(timer.timer)}
${table(matmulRows)}
`;
    await Deno.writeTextFile(values.out, md);
  };
  const log = (row: Row) =>
    console.log(
      `${row.kernel.padEnd(28)} ${row.shape.padEnd(16)} ${ms(row.t.ms).padStart(8)} ms ` +
        `(wall ${ms(row.t.wallMs)}, host ${
          ms(row.t.hostMs)
        }, R ${row.t.reps})  ${row.figures}  [${row.formula}]`,
    );

  const wanted = (kernel: string, shape: string) => !only || only.test(`${kernel} ${shape}`);
  const bandwidth = async (
    kernel: string,
    shape: string,
    bytes: number,
    formula: string,
    run: (i: number) => GPUBuffer[],
  ): Promise<Timing | null> => {
    if (!wanted(kernel, shape)) return null;
    const t = await timer.measure(run);
    const rate = gbs(bytes, t.ms);
    const row: Row = {
      kernel,
      shape,
      t,
      figures: `${num(rate)} GB/s (${((100 * rate) / vec4GBs).toFixed(0)}% of vec4 copy)`,
      formula,
    };
    memoryRows.push(row);
    log(row);
    await writeReport(false);
    return t;
  };

  for (const [rows, cols] of cfg.shapes) {
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
      bandwidth(kernel, shape, 12 * n, formula, (i) => {
        const o = encodePruneNM(rt, set(i).w, rows, cols, nKeep, mGroup);
        return [o.pruned, o.mask];
      });
    await prune("prune 2:4", 2, 4, "4N read + 8N write");
    await prune("prune 1:4", 1, 4, "4N + 8N");
    await prune("prune 2:8", 2, 8, "4N + 8N");
    await bandwidth("softThreshold24", shape, 12 * n, "4N + 8N", (i) => {
      const o = encodeSoftThreshold24(rt, set(i).w, rows, cols);
      return [o.pruned, o.mask];
    });
    await bandwidth(
      "ssteScale sums",
      shape,
      8 * n,
      "2 passes × 4N",
      (i) => [encodeSsteSums(rt, set(i).w, rows, cols)],
    );
    const tT = await bandwidth("transposableMask24", shape, 12.25 * n, "4N + 8N + N/4", (i) => {
      const o = encodeTransposableMask24(rt, set(i).w, rows, cols);
      return [o.pruned, o.mask, o.indices];
    });
    if (tT && n > searchN) [searchN, searchMs, searchShape] = [n, tT.ms, shape];
    await bandwidth(
      "mvue24",
      shape,
      8 * n,
      "4N + 4N",
      (i) => [encodeMvue24(rt, set(i).g, rows, cols, 7, 0)],
    );
    await bandwidth("maskedDecay", shape, 16 * n, "12N + 4N", (i) => {
      const s = set(i);
      return [encodeMaskedDecay(rt, s.g, s.w, s.m1, n, 6e-5)];
    });
    await bandwidth("flipCount", shape, 8 * n, "8N", (i) => {
      const s = set(i);
      return [encodeFlipCount(rt, s.m1, s.m2, n)];
    });
    await bandwidth("quantizeFp8 e4m3", shape, 12 * n, "amax 4N + 4N + 4N", (i) => {
      const o = encodeQuantizeFp8(rt, set(i).g, n, "e4m3");
      return [o.dequantized, o.scale];
    });
    await bandwidth("quantizeFp8 e5m2 + codes", shape, 13 * n, "amax 4N + 4N + 4N + N", (i) => {
      const o = encodeQuantizeFp8(rt, set(i).g, n, "e5m2", { codes: true });
      return [o.dequantized, o.scale, o.codes!];
    });
    await bandwidth("compress24", shape, 6.125 * n, "4N + 2N + N/8", (i) => {
      const o = encodeCompress24(rt, set(i).pruned.pruned, rows, cols);
      return [o.values, o.meta];
    });
    await bandwidth("decompress24", shape, 6.125 * n, "2N + N/8 + 4N", (i) => {
      const c = set(i).comp;
      return [encodeDecompress24(rt, c.values, c.meta, rows, cols)];
    });
    // Gated activations with the matrix as the [T, 2h] input (T = rows, h = cols / 2).
    for (const layout of ["row-major", "column-major"] as const) {
      const tag = layout === "row-major" ? "row" : "col";
      await bandwidth(
        `geglu ${tag}`,
        shape,
        6 * n,
        "4N + 2N",
        (i) => [encodeGeglu(rt, set(i).g, rows, h, { layout })],
      );
      await bandwidth(`gegluBackward ${tag}`, shape, 10 * n, "4N + 2N + 4N", (i) => {
        const s = set(i);
        return [encodeGegluBackward(rt, s.g, s.dy, rows, h, { layout })];
      });
      await bandwidth(
        `swiglu ${tag}`,
        shape,
        6 * n,
        "4N + 2N",
        (i) => [encodeSwiglu(rt, set(i).g, rows, h, { layout })],
      );
      await bandwidth(`swigluBackward ${tag}`, shape, 10 * n, "4N + 2N + 4N", (i) => {
        const s = set(i);
        return [encodeSwigluBackward(rt, s.g, s.dy, rows, h, { layout })];
      });
    }
    for (const s of sets) {
      const { w, g, m1, m2, dy, pruned, comp } = s;
      for (const b of [w, g, m1, m2, dy, pruned.pruned, pruned.mask, comp.values, comp.meta]) {
        rt.free(b);
      }
    }
    await rt.sync();
  }

  // Matmuls: Y = X·Wᵀ with X [T, in], W [out, in]: the dense versions, then 2:4 compressed.
  const DENSE: [string, EncodeMatmulOptions, string][] = [
    ["dense matmul naive", { variant: "naive" }, "2·T·in·out"],
    ["dense matmul register", { variant: "register" }, "2·T·in·out (incl. K-major repacks)"],
    ["dense matmul tiled 64", { variant: "tiled", tiling: TILING_64 }, "2·T·in·out"],
    ["dense matmul tiled 128", { variant: "tiled", tiling: TILING_128 }, "2·T·in·out"],
  ];
  for (const [inDim, outDim] of cfg.layers) {
    const T = cfg.tokens;
    const shape = `${T}×${inDim}→${outDim}`;
    const flops = 2 * T * inDim * outDim;
    const tflops = (msPerCall: number) => flops / msPerCall / 1e9;
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
      if (!wanted(kernel, shape)) continue;
      const t = await timer.measure((i) => [encodeMatmul(rt, set(i).x, set(i).w, dims, options)]);
      dense.push({ kernel, shape, t, figures: `${num(tflops(t.ms))} TFLOP/s`, formula });
    }
    const best = dense.length ? Math.min(...dense.map((r) => r.t.ms)) : NaN;
    for (const row of dense) {
      row.figures += `; ${(best / row.t.ms).toFixed(2)}× best dense`;
      matmulRows.push(row);
      log(row);
    }
    if (wanted("2:4 sparse matmul", shape)) {
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
        } effective; ${Number.isNaN(best) ? "—" : (best / t.ms).toFixed(2)}× best dense`,
        formula: "2·T·in·out (effective T·in·out)",
      };
      matmulRows.push(row);
      log(row);
    }
    await writeReport(false);
    for (const { x, w, pruned, comp } of sets) {
      for (const b of [x, w, pruned.pruned, pruned.mask, comp.values, comp.meta]) rt.free(b);
    }
    await rt.sync();
  }
  if (searchShape) {
    console.log(`transposable 2:4 mask search: ${ms(searchMs)} ms for ${searchShape}`);
  }
  if (timer.rejections.length) {
    console.log(
      `timestamps rejected in ${timer.rejections.length} batches (wall clock used there): ` +
        timer.rejections.slice(0, 3).join("; "),
    );
  }
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await writeReport(true);
  if (values.out) console.log(`wrote ${values.out}`);
  timer.destroy();
  rt.destroy();
}

if (import.meta.main) await main(Deno.args);
