/**
 * The project's counter-based random number generator: Philox4x32-10 (Salmon et al., SC 2011)
 * built only from 32-bit unsigned operations, so a WGSL kernel reproduces every draw bit for bit.
 * The round function, key, counter layout and word-to-uniform map are defined in SPEC §7.1.
 *
 * @module
 */

/** Philox multiplier of counter word 0 (the CPU and GPU ports import it from here). */
export const PHILOX_M0 = 0xD2511F53;
/** Philox multiplier of counter word 2. */
export const PHILOX_M1 = 0xCD9E8D57;
/** Key schedule increment of key word 0 (the golden ratio). */
export const PHILOX_W0 = 0x9E3779B9;
/** Key schedule increment of key word 1 (√3 − 1). */
export const PHILOX_W1 = 0xBB67AE85;
/** `2^-23`, the step between consecutive uniforms. */
const TWO_POW_M23 = 1.1920928955078125e-7;
const TWO_POW_32 = 4294967296;

/** A 4-word Philox counter or output block, each word an unsigned 32-bit integer. */
export type Philox4x32Block = [number, number, number, number];
/** A 2-word Philox key, each word an unsigned 32-bit integer. */
export type Philox4x32Key = [number, number];

/**
 * The high 32 bits of the 64-bit product `a · b` of two unsigned 32-bit integers, computed from
 * 16-bit halves with 32-bit operations only (each partial product of two 16-bit halves fits in 32
 * bits), exactly as the WGSL kernel must.
 */
function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff, aHi = a >>> 16;
  const bLo = b & 0xffff, bHi = b >>> 16;
  const ll = Math.imul(aLo, bLo) >>> 0;
  const lh = Math.imul(aLo, bHi) >>> 0;
  const hl = Math.imul(aHi, bLo) >>> 0;
  const hh = Math.imul(aHi, bHi) >>> 0;
  // Bits 16..47 of the product: the carry out of the low 32 bits comes from these three terms.
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

function assertU32(value: number, name: string, action: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(
      `Cannot ${action}: ${name} must be an integer in [0, 2^32), got ${value}`,
    );
  }
}

function assertWords(words: unknown, length: number, name: string, action: string): void {
  if (!Array.isArray(words) || words.length !== length) {
    throw new TypeError(
      `Cannot ${action}: ${name} must be an array of ${length} unsigned 32-bit integers, got ${
        Array.isArray(words) ? `${words.length} words` : words
      }`,
    );
  }
  for (let i = 0; i < length; i++) assertU32(words[i], `${name}[${i}]`, action);
}

/**
 * Philox4x32-10: ten rounds of the Philox bijection on a 128-bit counter under a 64-bit key
 * (Salmon et al., SC 2011; see the module documentation for the exact round function).
 *
 * @param counter Four unsigned 32-bit integers `(c0, c1, c2, c3)`.
 * @param key Two unsigned 32-bit integers `(k0, k1)`.
 * @returns The four output words, unsigned 32-bit integers.
 * @throws {TypeError} If `counter` or `key` is not an array of the right length.
 * @throws {RangeError} If a word is not an integer in `[0, 2^32)`.
 * @example
 * ```ts
 * import { philox4x32 } from "./rng.ts";
 * // Random123's known answer for a zero counter and key.
 * const out = philox4x32([0, 0, 0, 0], [0, 0]);
 * if (out[0] !== 0x6627e8d5 || out[3] !== 0x9b00dbd8) throw new Error("unexpected");
 * ```
 */
export function philox4x32(counter: Philox4x32Block, key: Philox4x32Key): Philox4x32Block {
  const action = "run Philox4x32-10";
  assertWords(counter, 4, "counter", action);
  assertWords(key, 2, "key", action);
  return philoxUnchecked(counter[0], counter[1], counter[2], counter[3], key[0], key[1]);
}

function philoxUnchecked(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
): Philox4x32Block {
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0), lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2), lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return [c0, c1, c2, c3];
}

function assertSeed(seed: number, action: string): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`Cannot ${action}: the seed must be an integer in [0, 2^53), got ${seed}`);
  }
}

/** `u = ((x >>> 9) + 0.5) · 2^-23`: exact in float32, strictly inside (0, 1). */
function wordToUniform(x: number): number {
  return ((x >>> 9) + 0.5) * TWO_POW_M23;
}

/**
 * The four uniforms in `(0, 1)` of draw `index` in stream `stream` under `seed`: Philox4x32-10 of
 * counter `(index, stream, 0, 0)` under key `(seed mod 2^32, floor(seed / 2^32))`, each output
 * word `x` mapped to `((x >>> 9) + 0.5) · 2^-23`. Every value is exactly representable in float32
 * and lies in `[2^-24, 1 − 2^-24]`, never 0 or 1.
 *
 * @param seed An integer in `[0, 2^53)`.
 * @param stream An integer in `[0, 2^32)` (e.g. one stream per layer or per tensor).
 * @param index An integer in `[0, 2^32)` (e.g. the group index).
 * @returns Four uniforms, from output words 0, 1, 2, 3 in that order.
 * @throws {RangeError} If an argument is out of range or not an integer.
 * @example
 * ```ts
 * import { uniform4 } from "./rng.ts";
 * const [u0, u1] = uniform4(42, 0, 7);
 * if (!(u0 > 0 && u0 < 1 && u1 > 0 && u1 < 1)) throw new Error("out of range");
 * if (uniform4(42, 0, 7)[0] !== u0) throw new Error("not deterministic");
 * ```
 */
export function uniform4(
  seed: number,
  stream: number,
  index: number,
): [number, number, number, number] {
  const action = "draw Philox uniforms";
  assertSeed(seed, action);
  assertU32(stream, "stream", action);
  assertU32(index, "index", action);
  const k0 = seed % TWO_POW_32, k1 = Math.floor(seed / TWO_POW_32);
  const w = philoxUnchecked(index, stream, 0, 0, k0, k1);
  return [wordToUniform(w[0]), wordToUniform(w[1]), wordToUniform(w[2]), wordToUniform(w[3])];
}

/**
 * `count` consecutive uniforms of one stream, flattened: entry `i` is word `i % 4` of
 * `uniform4(seed, stream, floor(i / 4))`. So entries `4n .. 4n+3` are the four uniforms of counter
 * `n`, and a prefix of a longer call equals a shorter call.
 *
 * @param seed An integer in `[0, 2^53)`.
 * @param stream An integer in `[0, 2^32)`.
 * @param count How many uniforms, an integer in `[0, 2^34]` (counters stay below 2^32); in practice
 * bounded by the largest `Float32Array`.
 * @returns A `Float32Array` of `count` values, each in `(0, 1)` (exact: no rounding to float32).
 * @throws {RangeError} If an argument is out of range or not an integer.
 * @example
 * ```ts
 * import { uniform4, uniforms } from "./rng.ts";
 * const u = uniforms(1, 2, 6);
 * if (u[5] !== uniform4(1, 2, 1)[1]) throw new Error("unexpected layout");
 * ```
 */
export function uniforms(seed: number, stream: number, count: number): Float32Array {
  const action = "draw Philox uniforms";
  assertSeed(seed, action);
  assertU32(stream, "stream", action);
  if (!Number.isInteger(count) || count < 0 || count > 4 * TWO_POW_32) {
    throw new RangeError(`Cannot ${action}: count must be an integer in [0, 2^34], got ${count}`);
  }
  const k0 = seed % TWO_POW_32, k1 = Math.floor(seed / TWO_POW_32);
  const out = new Float32Array(count);
  for (let n = 0; 4 * n < count; n++) {
    const w = philoxUnchecked(n, stream, 0, 0, k0, k1);
    for (let j = 0; j < 4 && 4 * n + j < count; j++) out[4 * n + j] = wordToUniform(w[j]);
  }
  return out;
}
