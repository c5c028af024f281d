/**
 * Timing and checking helpers shared by `speed.ts` and `zoo/gemm_speed.ts`: wall-clock time per
 * call of recorded GPU work over long batches (the empty-sync latency subtracted), a sampled
 * float64 check of a product, and the WGSL roofline of the H100 that kernel rows state their
 * bounds against.
 *
 * @module
 */

import type { GpuRuntime } from "../gpu/runtime.ts";
import { assertProductClose, seededFloats } from "../reference/testing.ts";

/**
 * The WGSL roofline measured on an H100 80GB HBM3 (issue 15, 2026-12-06, micro-benchmark with long
 * dispatches): fp32 FMA rate, workgroup-memory `vec4` loads per second, and the `vec4` copy
 * kernel's global bandwidth (results/device/2026-11-23-h100-bench-gpu.md).
 */
export const H100_WGSL = { fmaTflops: 51.2, wgVec4PerS: 1.86e12, copyGBps: 2986 };

/** Median of the empty `sync` round trip, in ms. */
export async function syncLatency(rt: GpuRuntime): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    await rt.sync();
    t.push(performance.now() - t0);
  }
  return t.sort((a, b) => a - b)[3];
}

/**
 * Median ms per call of `record` (which records GPU work and allocates nothing per call): `R`
 * calls are recorded, then submitted and synced; `(wall − latencyMs) / R`, `R` chosen so a batch
 * takes at least `batchMs`.
 */
export async function timeRecorded(
  rt: GpuRuntime,
  record: () => void,
  options: { latencyMs: number; batchMs?: number; batches?: number },
): Promise<number> {
  const { latencyMs, batchMs = 100, batches = 3 } = options;
  record();
  await rt.sync();
  let t0 = performance.now();
  record();
  await rt.sync();
  const one = Math.max(performance.now() - t0 - latencyMs, 0.01);
  const reps = Math.min(2000, Math.max(3, Math.ceil(batchMs / one)));
  const times: number[] = [];
  for (let b = 0; b < batches; b++) {
    for (let i = 0; i < reps; i++) record();
    t0 = performance.now();
    await rt.sync();
    times.push((performance.now() - t0 - latencyMs) / reps);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

/**
 * Checks 64 sampled outputs of a product (`assertProductClose` of `reference/testing.ts`).
 *
 * @returns `"ok (x of bound)"` or `"FAIL …"` (a benchmark row states it rather than stopping).
 */
export function sampleCheck(
  got: Float32Array,
  rows: number,
  cols: number,
  k: number,
  a: (i: number, kk: number) => number,
  b: (j: number, kk: number) => number,
): string {
  try {
    const worst = assertProductClose("product", got, { rows, cols, k }, a, b, { sample: 64 });
    return `ok (${worst.toFixed(2)} of bound)`;
  } catch (e) {
    return `FAIL ${(e as Error).message}`;
  }
}

/** A 2:4 matrix `[rows, k]` with a random pattern per group of four along k. */
export function random24(
  rows: number,
  k: number,
  values: Float32Array,
  seed: number,
): Float32Array {
  const w = values.slice();
  let s = seed >>> 0;
  const pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]];
  for (let g = 0; g < rows * k / 4; g++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const keep = pairs[Math.floor((s / 2 ** 32) * 6)];
    for (let i = 0; i < 4; i++) if (!keep.includes(i)) w[4 * g + i] = 0;
  }
  return w;
}

/** Values of {@linkcode uploadSeeded}'s block, which repeats across a buffer. */
const BLOCK = 1 << 20;

/**
 * A storage buffer of `n` float32 values in `[-0.5, 0.5)`: a seeded block of 2^20 values
 * (`seededFloats`) repeated (generating the 400 M values of the tied head's logits on the host
 * would take half a minute), and the host's view of any element for checks.
 */
export function uploadSeeded(
  rt: GpuRuntime,
  n: number,
  seed: number,
): { buffer: GPUBuffer; at: (i: number) => number } {
  const block = seededFloats(Math.min(n, BLOCK), seed);
  const buffer = rt.alloc(4 * Math.max(n, 1));
  for (let off = 0; off < n; off += BLOCK) {
    rt.write(buffer, block.subarray(0, Math.min(BLOCK, n - off)), 4 * off);
  }
  return { buffer, at: (i) => block[i % BLOCK] };
}
