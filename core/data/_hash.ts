/**
 * Private helpers of the data pipeline: the counter-based generator that draws the document split
 * and the batch windows, and the FNV-1a checksum of the token files.
 *
 * The value for a tuple of unsigned 32-bit words `w₀…wₖ` is `h = 0x6a09e667; h = mix32(h ^ wᵢ)`
 * for each word in turn, `mix32` being the "lowbias32" integer hash (`x ^= x >>> 16;
 * x *= 0x7feb352d; x ^= x >>> 15; x *= 0x846ca68b; x ^= x >>> 16`, products mod 2^32). A uniform
 * integer in `[0, n)` from the tuple `T` is `floor(u · n)` with
 * `u = ((hash(T, 0) >>> 5) · 2^26 + (hash(T, 1) >>> 6)) / 2^53`. Only 32-bit integer operations
 * and exact doubles are involved, so every machine draws the same values.
 *
 * @module
 */

export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

export function hashWords(words: readonly number[]): number {
  let h = 0x6a09e667;
  for (const w of words) h = mix32(h ^ w);
  return h;
}

const TWO_POW_26 = 67108864;
const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/** A uniform integer in `[0, n)` drawn from the tuple `words`. */
export function uniformIndex(n: number, words: readonly number[]): number {
  const hi = hashWords([...words, 0]) >>> 5;
  const lo = hashWords([...words, 1]) >>> 6;
  return Math.floor(((hi * TWO_POW_26 + lo) / TWO_POW_53) * n);
}

/** Stream tags keep the draws of different uses independent. */
export const STREAM_SPLIT = 1;
export const STREAM_BATCH = 2;

export function assertSeed(value: number, name: string, action: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Cannot ${action}: ${name} must be an integer in [0, 2^53), got ${value}`);
  }
}

export function splitWords(value: number): [number, number] {
  return [value % TWO_POW_32, Math.floor(value / TWO_POW_32)];
}

export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

export function tokenBytes(tokens: Uint16Array): Uint8Array {
  return new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength);
}

export function hex(x: number): string {
  return `0x${x.toString(16).padStart(8, "0")}`;
}
