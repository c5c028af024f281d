/**
 * The benchmark harness of the GPU scripts (`bench_gpu.ts`, `matmul_zoo.ts`, `step_time.ts`): a
 * round-trip latency probe, a batch timer (GPU timestamps where the device has them, else wall
 * clock minus the latency; batch sizes adapted per kernel; rotating input sets so the cache is not
 * what is measured), medians, and the formatting of figures, rates and same-run ratios. The timing
 * method is SPEC §11.6.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../gpu/runtime.ts";
import type { MatmulDims } from "../gpu/kernels/matmul.ts";

/** How the batch timer sizes its batches and inputs. */
export interface TimerConfig {
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
}

/** A query set holds at most 4096 timestamps: two per submission. */
const MAX_SUBMITS = 2048;
/** Most calls recorded into one submission, so the GPU starts while the host records the rest. */
const MAX_CALLS_PER_SUBMIT = 4096;
/** Probe batches grow until they hold this much GPU work (timestamps) or latency (wall clock). */
const PROBE_MS = 2;

/** Three significant digits (no exponent for the ranges printed here). */
export function num(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

/** Milliseconds with four significant digits. */
export function ms(v: number): string {
  return v >= 1000 ? v.toFixed(0) : v.toPrecision(4);
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Bytes that `fn` allocates from the runtime's pool (outputs and scratch alike). */
export function allocatedBytes(rt: GpuRuntime, fn: () => void): number {
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
export const TRIVIAL_SPEC: KernelSpec = {
  key: "bench-trivial",
  code: `@group(0) @binding(0) var<storage, read_write> d: array<u32>;
@compute @workgroup_size(1)
fn main() { d[0] = 1u; }
`,
};

/** Median round-trip latencies in milliseconds. */
export interface Latency {
  /** `rt.sync()` with nothing recorded (`onSubmittedWorkDone` alone). */
  emptySync: number;
  /** One trivial dispatch, submitted, then `rt.sync()`: subtracted from wall-clock batches. */
  trivialDispatch: number;
  /** A 4-byte read-back (`mapAsync`). */
  readBack: number;
}

export async function measureLatency(rt: GpuRuntime, samples = 15): Promise<Latency> {
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
export interface Timing {
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

/**
 * Times kernels by batches of back-to-back calls: `R` calls recorded into a few submissions, then
 * one sync; `R` grows from probe batches until a batch takes `targetMs` of GPU work (or of host
 * recording, where slower). A batch's time is the union of its submissions' GPU timestamp
 * intervals, or its wall clock minus the round-trip latency.
 */
export class BatchTimer {
  readonly latencyMs: number;
  readonly targetMs: number;
  /** Why timestamps were rejected for a batch (then that figure uses the wall clock). */
  readonly rejections: string[] = [];
  #rt: GpuRuntime;
  #cfg: TimerConfig;
  #querySet: GPUQuerySet | null = null;
  #resolve: GPUBuffer | null = null;
  #readBack: GPUBuffer | null = null;
  /** Calls made so far: the rotation index handed to each call. */
  #calls = 0;
  /** Calls per submission the pool has been filled for, per measurement. */
  #filled = 0;

  constructor(rt: GpuRuntime, cfg: TimerConfig, latencyMs: number, timestamps: boolean) {
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

/** Achieved bandwidth in GB/s of `bytes` moved in `msPerCall` milliseconds. */
export function gbPerS(bytes: number, msPerCall: number): number {
  return bytes / msPerCall / 1e6;
}

/** Achieved throughput in GFLOP/s of `flops` operations in `msPerCall` milliseconds. */
export function gflopPerS(flops: number, msPerCall: number): number {
  return flops / msPerCall / 1e6;
}

/** `baseline / value` as a ratio against a same-run baseline, e.g. `2.31×` (— when undefined). */
export function ratio(baseline: number, value: number): string {
  return Number.isFinite(baseline / value) ? `${(baseline / value).toFixed(2)}×` : "—";
}

/** A device's ceilings, measured in the same run where possible. */
export interface Roofline {
  /** Float32 rate in TFLOP/s (NaN when unknown: then only the memory side bounds). */
  tflops: number;
  /** Memory bandwidth in GB/s. */
  gbps: number;
}

/**
 * The roofline bound of one call moving `bytes` and doing `flops`: which side limits it and the
 * share of that bound the measured time reaches, e.g. `memory 48%` (100% = at the ceiling).
 */
export function boundCell(msPerCall: number, flops: number, bytes: number, roof: Roofline): string {
  const memoryMs = bytes / roof.gbps / 1e6;
  const computeMs = Number.isFinite(roof.tflops) ? flops / roof.tflops / 1e9 : 0;
  const side = computeMs > memoryMs ? "compute" : "memory";
  const share = (100 * Math.max(memoryMs, computeMs)) / msPerCall;
  const note = flops > 0 && !Number.isFinite(roof.tflops) ? " (no FLOP ceiling given)" : "";
  return `${side} ${share.toFixed(0)}%${note}`;
}

/** One matrix product of a training step, `op(A)[B, M, K]·op(B)[B, K, N]`, run `count` times a step. */
export interface StepProduct extends MatmulDims {
  /** What it computes (a table row's name). */
  name: string;
  /** How many times one training step runs it. */
  count: number;
}

/**
 * The three products of a linear layer `Z = X·Wᵀ` (`W` is `[out, inp]`) over `tokens` rows: the
 * forward `X·Wᵀ`, the data gradient `∇Z·W` and the weight gradient `∇Zᵀ·X`.
 *
 * @param name The layer's name (each row's prefix).
 * @param tokens Rows of `X`.
 * @param out Output features.
 * @param inp Input features.
 * @param count How many such layers a step runs.
 * @returns The three products.
 */
export function linearProducts(
  name: string,
  tokens: number,
  out: number,
  inp: number,
  count: number,
): StepProduct[] {
  const product = (suffix: string, m: number, n: number, k: number, tA: boolean, tB: boolean) => ({
    name: `${name} ${suffix}`,
    batch: 1,
    m,
    n,
    k,
    transA: tA,
    transB: tB,
    count,
  });
  return [
    product("X·Wᵀ", tokens, out, inp, false, true),
    product("∇Z·W", tokens, inp, out, false, false),
    product("∇Zᵀ·X", out, inp, tokens, true, false),
  ];
}

/** A child process that answers one JSON line per request (the PyTorch baselines). */
export interface JsonLineChild {
  /** Writes `text` (one request, with its newline) to the child's stdin. */
  send(text: string): Promise<void>;
  /** The child's next JSON line. @throws {Error} If it exited (with its last stderr line). */
  next(): Promise<Record<string, unknown>>;
  /** Closes stdin and waits for the exit. */
  close(): Promise<void>;
}

/**
 * Spawns `command args` with piped stdio for a JSON-lines exchange.
 *
 * @throws {Error} If the command cannot start (e.g. a missing Python).
 */
export function spawnJsonLines(command: string, args: string[]): JsonLineChild {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  let buffer = "";
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TransformStream<string, string>({
      transform(chunk, controller) {
        buffer += chunk;
        const parts = buffer.split("\n");
        buffer = parts.pop()!;
        for (const p of parts) if (p.trim()) controller.enqueue(p);
      },
    }),
  ).getReader();
  const stderr = new Response(child.stderr).text();
  return {
    send: (text) => writer.write(new TextEncoder().encode(text)),
    async next() {
      const { value, done } = await lines.read();
      if (done) {
        const last = (await stderr).trim().split("\n").pop();
        throw new Error(`${command} ${args.join(" ")} exited: ${last}`);
      }
      return JSON.parse(value);
    },
    async close() {
      await writer.close();
      await child.status;
      await stderr;
    },
  };
}
