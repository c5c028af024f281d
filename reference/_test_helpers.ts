/**
 * Small helpers shared by the tests (and the GPU benchmarks' input generators); not published.
 * @module
 */
import type { Matrix } from "../core/matrix.ts";

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

export function assertArrayEquals(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
) {
  assert(
    actual.length === expected.length,
    `${what}: length ${actual.length} !== ${expected.length}`,
  );
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      throw new Error(
        `${what}: at ${i} got ${actual[i]}, expected ${expected[i]} ` +
          `(actual [${Array.from(actual)}], expected [${Array.from(expected)}])`,
      );
    }
  }
}

export function assertThrows(
  fn: () => unknown,
  errorClass: typeof TypeError | typeof RangeError,
  includes: string[],
): void {
  try {
    fn();
  } catch (e) {
    assert(e instanceof errorClass, `expected ${errorClass.name}, got ${e}`);
    for (const text of includes) {
      assert(e.message.includes(text), `message "${e.message}" does not mention "${text}"`);
    }
    return;
  }
  throw new Error(`expected ${errorClass.name} mentioning ${includes.join(", ")}, nothing thrown`);
}

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussianMatrix(rows: number, cols: number, seed: number): Matrix {
  const rand = mulberry32(seed);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    data[i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  }
  return { rows, cols, data };
}

/** Small signed integers: many exact magnitude ties, and zeros. */
export function tieHeavyMatrix(rows: number, cols: number, seed: number): Matrix {
  const rand = mulberry32(seed);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 7) - 3;
  return { rows, cols, data };
}

/**
 * `n` deterministic floats from a 32-bit LCG (s ← 1664525·s + 1013904223): `map` turns each
 * uniform `u ∈ [0, 1)` into a value (default `u − 0.5`). Cheap and reproducible across runs and
 * languages, which is all test and benchmark inputs need.
 */
export function lcgFloats(
  n: number,
  seed: number,
  map: (u: number) => number = (u) => u - 0.5,
): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = map(s / 2 ** 32);
  }
  return out;
}
