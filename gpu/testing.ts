/**
 * What the GPU tests share: a lazily opened GPU fixture that prints the adapter and makes every
 * test fail (never skip) without one, the `GpuKernels` parity fixture of the kernel tests
 * (`gpu/kernels/*_test.ts`), and their deterministic awkward inputs (ties, zeros, ±0, ±Inf,
 * subnormals; shapes that are not multiples of a tile). Test support: not published.
 *
 * @module
 */

import type { Matrix } from "../reference/matrix.ts";
import { seededRandom } from "../reference/testing.ts";
import { GpuKernels } from "./gpu_kernels.ts";
import { describeAdapter, GpuRuntime } from "./runtime.ts";

/**
 * A GPU resource opened on first use and shared by one test file's tests. The first call creates
 * it and prints its adapter under `label`; without a WebGPU adapter every call rejects with the
 * `WebGpuUnavailableError`, so every test that awaits it fails loudly (never a skip).
 *
 * @param label Prefix of the printed adapter line.
 * @param create Opens the resource (a runtime, kernels, a backend).
 * @param adapterOf Describes the adapter the resource runs on.
 * @returns The getter; every call returns the same promise.
 */
export function gpuFixture<T>(
  label: string,
  create: () => Promise<T>,
  adapterOf: (value: T) => string,
): () => Promise<T> {
  let opened: Promise<T> | undefined;
  return () =>
    opened ??= create().then((value) => {
      console.log(`${label}: adapter ${adapterOf(value)}`);
      return value;
    }, (e: unknown) => {
      console.log(`${label}: no WebGPU adapter (${(e as Error).message})`);
      throw e;
    });
}

/** The `GpuKernels` every parity test of `gpu/kernels/` runs on (one per process). */
export const parityKernels: () => Promise<GpuKernels> = gpuFixture(
  "gpu parity",
  async () => new GpuKernels(await GpuRuntime.create()),
  (gpu) => adapterLine(gpu.runtime),
);

/** The adapter, its wgpu backend and whether it is a fallback (software) adapter, for the printed line. */
export function adapterLine(rt: GpuRuntime): string {
  return `"${describeAdapter(rt.adapter)}" (fallback: ${rt.isFallbackAdapter})`;
}

/**
 * Opens a runtime for a test file that dispatches kernels directly, printing its adapter; rejects
 * (so the file's tests fail, never skip) without a WebGPU adapter.
 *
 * @param label Prefix of the printed adapter line.
 * @returns The runtime; the caller destroys it.
 */
export function openTestRuntime(label: string): Promise<GpuRuntime> {
  return gpuFixture(label, () => GpuRuntime.create(), adapterLine)();
}

/**
 * Registers a GPU-vs-reference parity test named `gpu parity: <name>`; it fails when WebGPU has
 * no adapter.
 */
export function parityTest(name: string, fn: (gpu: GpuKernels) => Promise<void>): void {
  Deno.test(`gpu parity: ${name}`, async () => await fn(await parityKernels()));
}

/** The seeded uniform stream of every parity test: the project's one generator (Philox). */
export function random(seed: number): () => number {
  return seededRandom(seed);
}

/** `n` normal values times `scale` (Box–Muller on `rand`). */
export function gaussian(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rand(), v = rand();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Finite awkward values: ±0, ties, subnormals. */
export const SPECIAL_FINITE = [0, -0, 1, -1, 0.5, -0.5, 2, 1e-45, -1e-45, 3e-42, 1e-39, -2.5e-39];
/** ±Inf and values near the float32 maximum. */
export const SPECIAL_INF = [Infinity, -Infinity, 3.4e38, -3.4e38];

/**
 * Half Gaussian values, half drawn from a palette of ties, zeros, subnormals, 1e30 (unless
 * `huge` is false) and ±Inf (if `withInf`).
 */
export function mixed(rand: () => number, n: number, withInf: boolean, huge = true): Float32Array {
  const palette = [...SPECIAL_FINITE, ...(huge ? [1e30] : []), ...(withInf ? SPECIAL_INF : [])];
  const g = gaussian(rand, n);
  for (let i = 0; i < n; i++) {
    if (rand() < 0.5) g[i] = palette[Math.floor(rand() * palette.length)];
  }
  return g;
}

/** Small integers: many exact ties. */
export function ties(rand: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.floor(rand() * 5) - 2);
}

/** A `Matrix` over `data` (no copy). */
export function mat(rows: number, cols: number, data: Float32Array): Matrix {
  return { rows, cols, data };
}

/** Awkward shapes for row-grouped kernels with group size 4 (none a multiple of a 256 tile). */
export const SHAPES_4: [number, number][] = [[1, 4], [1, 12], [4, 4], [12, 20], [37, 44], [
  3,
  1028,
]];
/** One large case per kernel. */
export const LARGE: [number, number] = [1024, 4096];

/** The transpose of `m`. */
export function transpose(m: Matrix): Matrix {
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < m.cols; c++) out[c * m.rows + r] = m.data[r * m.cols + c];
  }
  return mat(m.cols, m.rows, out);
}

/** Runs both, expects both to throw the same error type and message. */
export async function assertSameError(
  label: string,
  reference: () => unknown,
  device: () => Promise<unknown>,
): Promise<void> {
  let refError: Error | undefined, gpuError: Error | undefined;
  try {
    reference();
  } catch (e) {
    refError = e as Error;
  }
  try {
    await device();
  } catch (e) {
    gpuError = e as Error;
  }
  if (!refError) throw new Error(`${label}: the reference did not throw`);
  if (!gpuError) throw new Error(`${label}: the GPU path did not throw (reference: ${refError})`);
  if (gpuError.constructor !== refError.constructor || gpuError.message !== refError.message) {
    throw new Error(`${label}: GPU threw ${gpuError}, reference threw ${refError}`);
  }
}

/** One of `values`, drawn with `rand`. */
export function pick<T>(rand: () => number, values: readonly T[]): T {
  return values[Math.floor(rand() * values.length)];
}

/** `n` uniform values in [−1, 1). */
export function uniformSigned(rand: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * rand() - 1);
}
