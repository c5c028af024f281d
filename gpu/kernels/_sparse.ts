/**
 * Private helpers of the sparse kernel families (prune, soft threshold, transposable, compress,
 * MVUE, masked decay, flip rate, FP8, gated, sparse matmul): a spec cache, argument checks of the
 * encoders, and exact float32 literals for generated WGSL.
 *
 * @module
 */

import type { KernelSpec } from "../runtime.ts";

const specs = new Map<string, KernelSpec>();

/**
 * The spec for `key`, generating its WGSL with `build` on first use only (dispatching a kernel
 * never regenerates its source).
 */
export function cachedSpec(key: string, build: () => string): KernelSpec {
  let spec = specs.get(key);
  if (!spec) {
    spec = { key, code: build() };
    specs.set(key, spec);
  }
  return spec;
}

/**
 * Checks that every named value is a non-negative integer that fits a `u32` kernel parameter.
 *
 * @throws {RangeError} Naming the first offending value.
 */
export function assertSizes(values: Record<string, number>, action: string): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new RangeError(
        `Cannot ${action}: ${name} must be a non-negative integer below 2^32, got ${v}`,
      );
    }
  }
}

/**
 * Checks that `buffer` holds at least `bytes` bytes.
 *
 * @throws {TypeError} If `buffer` is not a `GPUBuffer`.
 * @throws {RangeError} Naming the buffer, its size and the size needed.
 */
export function assertBuffer(buffer: GPUBuffer, bytes: number, name: string, action: string) {
  if (buffer === null || typeof buffer !== "object" || typeof buffer.size !== "number") {
    throw new TypeError(`Cannot ${action}: ${name} must be a GPUBuffer, got ${buffer}`);
  }
  if (buffer.size < bytes) {
    throw new RangeError(
      `Cannot ${action}: ${name} holds ${buffer.size} bytes, at least ${bytes} needed`,
    );
  }
}

/**
 * A WGSL expression with exactly the float32 value `Math.fround(v)`: a bit cast of its encoding,
 * so no decimal-to-float conversion of the shader compiler can change it.
 */
export function f32Exact(v: number): string {
  const bits = new Uint32Array(Float32Array.of(v).buffer)[0];
  return `bitcast<f32>(0x${bits.toString(16)}u)`;
}
