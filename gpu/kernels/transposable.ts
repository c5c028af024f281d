/**
 * Transposable 2:4 masks on the GPU (SPEC §1.4), the device twin of `transposableMask24` and
 * `transposablePatternIndices` of `reference/transposable.ts`: per aligned 4×4 block (one thread),
 * the pattern among the 90 that maximises the retained magnitude, ties to the lowest number. The
 * patterns are generated here independently of the reference (16-bit row-major words, #0 `0xCC33`).
 * Scores are float32 with a runner-up margin; near-ties, ties and infinities are re-scored as the
 * reference does (float64 addition in row-major order, emulated with 32-bit integers), so the choice
 * is exactly the reference's (the argument: SPEC §1.4). Kept values are copied as bits.
 *
 * @module
 */

import type { KernelSpec } from "../runtime.ts";
import { packParams } from "./_params.ts";
import { dispatchNew } from "./_dispatch.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { assertBuffer, assertSizes, cachedSpec, type Dense24Encoder } from "./_sparse.ts";

/** Counts the set bits of a 4-bit row or column slice. */
function ones(word: number, bits: readonly number[]): number {
  return bits.reduce((n, b) => n + ((word >> b) & 1), 0);
}

/**
 * The 90 transposable 4×4 patterns, scanned over all 16-bit words from `0xFFFF` down (so they
 * come out in descending order): a word qualifies when each row nibble and each column has
 * exactly two ones.
 */
function enumeratePatterns(): number[] {
  const out: number[] = [];
  for (let word = 0xffff; word >= 0; word--) {
    let ok = true;
    for (let i = 0; i < 4 && ok; i++) {
      const rowBits = [15 - 4 * i, 14 - 4 * i, 13 - 4 * i, 12 - 4 * i];
      const colBits = [15 - i, 11 - i, 7 - i, 3 - i];
      ok = ones(word, rowBits) === 2 && ones(word, colBits) === 2;
    }
    if (ok) out.push(word);
  }
  return out;
}

const PATTERN_WORDS: readonly number[] = enumeratePatterns();

/**
 * The 90 pattern words the kernel bakes in, in kernel order (descending; index = pattern number).
 *
 * @returns A fresh `Uint16Array` of 90 words.
 * @example
 * ```ts
 * import { gpuTransposablePatterns } from "./transposable.ts";
 * const p = gpuTransposablePatterns();
 * if (p.length !== 90 || p[0] !== 0xcc33) throw new Error("unexpected");
 * ```
 */
export function gpuTransposablePatterns(): Uint16Array {
  return Uint16Array.from(PATTERN_WORDS);
}

/** WGSL: float64 addition of non-negative values emulated with 32-bit integers. */
const EXACT_F64_WGSL = `
// A non-negative float64 as (hi * 2^32 + lo) * 2^e with a 53-bit significand (hi in
// [2^20, 2^21)); zero is e = -100000, infinity e = 100000 (significand 0).
struct X64 { e: i32, hi: u32, lo: u32 }

const X64_ZERO = X64(-100000, 0u, 0u);
const X64_INF = X64(100000, 0u, 0u);

fn x64_from_magnitude(a: u32) -> X64 {
  if (a == 0u) { return X64_ZERO; }
  if (a >= 0x7f800000u) { return X64_INF; }
  let fe = a >> 23u;
  var m = a & 0x7fffffu;
  if (fe == 0u) {
    // Subnormal float32 m * 2^-149: move the leading one to bit 52.
    let s = 52u - (31u - countLeadingZeros(m));
    if (s >= 32u) { return X64(-149 - i32(s), m << (s - 32u), 0u); }
    return X64(-149 - i32(s), m >> (32u - s), m << s);
  }
  m = m | 0x800000u; // m * 2^(fe - 150) = (m << 29) * 2^(fe - 179)
  return X64(i32(fe) - 179, m >> 3u, m << 29u);
}

// (hi, lo) << s, 0 <= s < 64.
fn x64_shl(v: vec2<u32>, s: u32) -> vec2<u32> {
  if (s == 0u) { return v; }
  if (s >= 32u) { return vec2<u32>(v.y << (s - 32u), 0u); }
  return vec2<u32>((v.x << s) | (v.y >> (32u - s)), v.y << s);
}

// (hi, lo) >> s, 0 <= s < 64, with the bits shifted out OR-ed into bit 0 (sticky).
fn x64_shr_sticky(v: vec2<u32>, s: u32) -> vec2<u32> {
  if (s == 0u) { return v; }
  if (s >= 32u) {
    let k = s - 32u;
    let lost = v.y != 0u || (v.x & ((1u << k) - 1u)) != 0u;
    return vec2<u32>(0u, (v.x >> k) | u32(lost));
  }
  let lost = (v.y & ((1u << s) - 1u)) != 0u;
  return vec2<u32>(v.x >> s, (v.y >> s) | (v.x << (32u - s)) | u32(lost));
}

// Round-to-nearest-even float64 sum of two non-negative values.
fn x64_add(p: X64, q: X64) -> X64 {
  if (p.e == 100000 || q.e == 100000) { return X64_INF; }
  if (p.hi == 0u && p.lo == 0u) { return q; }
  if (q.hi == 0u && q.lo == 0u) { return p; }
  var a = p;
  var b = q;
  if (a.e < b.e) {
    a = q;
    b = p;
  }
  let d = a.e - b.e;
  if (d >= 54) { return a; } // b is below half an ULP of a
  // Ten guard bits: X = Ma << 10 in [2^62, 2^63), Y = (Mb << 10) >> d with sticky.
  let x = x64_shl(vec2<u32>(a.hi, a.lo), 10u);
  let y = x64_shr_sticky(x64_shl(vec2<u32>(b.hi, b.lo), 10u), u32(d));
  var lo = x.y + y.y;
  var hi = x.x + y.x + u32(lo < x.y);
  var e = a.e - 10;
  if (hi >= 0x80000000u) {
    let t = x64_shr_sticky(vec2<u32>(hi, lo), 1u);
    hi = t.x;
    lo = t.y;
    e += 1;
  }
  let rem = lo & 0x3ffu;
  var mlo = (lo >> 10u) | (hi << 22u);
  var mhi = hi >> 10u;
  if (rem > 0x200u || (rem == 0x200u && (mlo & 1u) == 1u)) {
    mlo += 1u;
    mhi += u32(mlo == 0u);
  }
  if (mhi == 0x200000u) {
    mhi = 0x100000u;
    e += 1;
  }
  return X64(e + 10, mhi, mlo);
}

fn x64_greater(p: X64, q: X64) -> bool {
  if (p.e != q.e) { return p.e > q.e; }
  if (p.hi != q.hi) { return p.hi > q.hi; }
  return p.lo > q.lo;
}
`;

/** Row nibble → the two kept columns. */
function nibbleColumns(nibble: number): [number, number] {
  const cols = [0, 1, 2, 3].filter((c) => (nibble >> (3 - c)) & 1);
  return [cols[0], cols[1]];
}

function fastPathWgsl(): string {
  const lines: string[] = [];
  const pairs = new Set<string>();
  for (const word of PATTERN_WORDS) {
    for (let r = 0; r < 4; r++) pairs.add(`${r}_${(word >> (12 - 4 * r)) & 0xf}`);
  }
  for (const key of [...pairs].sort()) {
    const [r, nibble] = key.split("_").map(Number);
    const [c0, c1] = nibbleColumns(nibble);
    const comp = ["x", "y", "z", "w"];
    lines.push(`  let q${key} = m${r}.${comp[c0]} + m${r}.${comp[c1]};`);
  }
  lines.push("  var best = -1.0;", "  var second = -1.0;", "  var bestIndex = 0u;");
  PATTERN_WORDS.forEach((word, p) => {
    const q = [0, 1, 2, 3].map((r) => `q${r}_${(word >> (12 - 4 * r)) & 0xf}`);
    lines.push(
      `  { let s = (${q[0]} + ${q[1]}) + (${q[2]} + ${q[3]}); ` +
        `if (s > best) { second = best; best = s; bestIndex = ${p}u; } ` +
        `else if (s > second) { second = s; } }`,
    );
  });
  return lines.join("\n");
}

/**
 * The transposable-mask kernel. Bindings: `w` (read, float32 bits as `vec4` rows of blocks),
 * `pruned`, `mask` (float32 0/1), `indices` (`u32` pattern number per block, row-major over
 * blocks), uniform `{ blockRows, blockCols }`. One thread per 4×4 block.
 *
 * @returns The kernel, key `transposable24`.
 * @example
 * ```ts
 * import { transposableMask24Kernel } from "./transposable.ts";
 * if (!transposableMask24Kernel().code.includes("0xcc33u")) throw new Error("unexpected");
 * ```
 */
export function transposableMask24Kernel(): KernelSpec {
  return cachedSpec(
    "transposable24",
    () =>
      `// Transposable 2:4 mask (SPEC 1.4): best of 90 patterns per 4x4 block, ties to the lowest.
${
        wgslBindings("blockRows: u32, blockCols: u32", [
          "read w: array<vec4<u32>>",
          "read_write pruned: array<vec4<u32>>",
          "read_write mask: array<vec4<f32>>",
          "read_write indices: array<u32>",
        ])
      }

var<private> PATTERNS: array<u32, 90> = array<u32, 90>(
${
        Array.from(
          { length: 9 },
          (_, i) =>
            "  " +
            PATTERN_WORDS.slice(10 * i, 10 * i + 10).map((w) => `0x${w.toString(16)}u`).join(", "),
        ).join(",\n")
      }
);
${EXACT_F64_WGSL}
// The reference's search: float64 sums in row-major order, first strictly larger sum wins.
fn exact_search(a: array<u32, 16>) -> u32 {
  var mags: array<X64, 16>;
  for (var k = 0u; k < 16u; k++) { mags[k] = x64_from_magnitude(a[k]); }
  var bestIndex = 0u;
  var best = X64_ZERO;
  for (var q = 0u; q < 90u; q++) {
    let word = PATTERNS[q];
    var s = X64_ZERO;
    for (var k = 0u; k < 16u; k++) {
      if (((word >> (15u - k)) & 1u) == 1u) { s = x64_add(s, mags[k]); }
    }
    if (q == 0u || x64_greater(s, best)) {
      best = s;
      bestIndex = q;
    }
  }
  return bestIndex;
}

${wgslItemMain("block", "p.blockRows * p.blockCols")}
  let bi = block / p.blockCols;
  let bj = block - bi * p.blockCols;
  let base = 4u * bi * p.blockCols + bj; // vec4 index of row 0 of the block
  // Named values rather than indexed private arrays, so they stay in registers.
${
        [0, 1, 2, 3].map((r) =>
          `  let row${r} = w[base + ${r}u * p.blockCols];
  let a${r} = row${r} & vec4<u32>(0x7fffffffu);
  let m${r} = bitcast<vec4<f32>>(a${r});`
        ).join("\n")
      }
${fastPathWgsl()}
  // Re-score exactly unless the float32 winner is clear by more than its rounding error.
  if (!(best <= 1.0e38) || second >= best - (best * 3.814697265625e-6 + 7.888609052210118e-31)) {
    bestIndex = exact_search(array<u32, 16>(
      a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w,
      a2.x, a2.y, a2.z, a2.w, a3.x, a3.y, a3.z, a3.w,
    ));
  }
  indices[block] = bestIndex;
  let word = PATTERNS[bestIndex];
${
        [0, 1, 2, 3].map((r) =>
          `  let bits${r} = (vec4<u32>(word >> ${
            12 - 4 * r
          }u) >> vec4<u32>(3u, 2u, 1u, 0u)) & vec4<u32>(1u);
  pruned[base + ${r}u * p.blockCols] = select(vec4<u32>(0u), row${r}, bits${r} == vec4<u32>(1u));
  mask[base + ${r}u * p.blockCols] = vec4<f32>(bits${r});`
        ).join("\n")
      }
}
`,
  );
}

/** Output buffers of {@linkcode encodeTransposableMask24}. */
export interface TransposableBuffers {
  /** `w ⊙ M`, `rows · cols` float32 values (dropped entries `+0`). */
  pruned: GPUBuffer;
  /** The transposable mask `M`, `rows · cols` float32 values 0/1. */
  mask: GPUBuffer;
  /** The chosen pattern number per block, `(rows / 4)·(cols / 4)` `u32`, row-major over blocks. */
  indices: GPUBuffer;
}

/**
 * Records the transposable 2:4 mask search of a row-major float32 matrix (SPEC §1.4; the device
 * twin of `transposableMask24` and `transposablePatternIndices`). `w` is not modified.
 *
 * @param rt The runtime.
 * @param w The matrix, `rows · cols` float32 values.
 * @param rows Number of rows, a multiple of 4.
 * @param cols Row length, a multiple of 4.
 * @returns New pooled buffers: the pruned matrix, the float32 mask and the pattern numbers.
 * @throws {RangeError} If a size is invalid, not a multiple of 4, or `w` is too small.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeTransposableMask24 } from "./transposable.ts";
 * const rt = await GpuRuntime.create();
 * const w = rt.upload(
 *   new Float32Array([0.1, -3, 2, 0.5, 4, 0.2, -0.3, 1, 0.5, 1, -2, 3, -1, 2, 0.1, 0.2]),
 * );
 * const { mask, indices } = encodeTransposableMask24(rt, w, 4, 4);
 * const [m, i] = await rt.readMany([{ buffer: mask, bytes: 64 }, { buffer: indices, bytes: 4 }]);
 * rt.destroy();
 * // SPEC §9: pattern #54, 0110/1001/0011/1100.
 * if (new Uint32Array(i)[0] !== 54 || new Float32Array(m).join("") !== "0110100100111100") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export const encodeTransposableMask24: Dense24Encoder<TransposableBuffers> = (
  rt,
  w,
  rows,
  cols,
) => {
  const action = "find a transposable 2:4 mask on the GPU";
  assertSizes({ rows, cols }, action);
  if (rows % 4 !== 0) {
    throw new RangeError(
      `Cannot ${action}: the number of rows must be a multiple of 4, got ${rows}`,
    );
  }
  if (cols % 4 !== 0) {
    throw new RangeError(`Cannot ${action}: the row length must be a multiple of 4, got ${cols}`);
  }
  assertBuffer(w, 4 * rows * cols, "w", action);
  const blockRows = rows / 4, blockCols = cols / 4;
  const blocks = blockRows * blockCols;
  const sizes = [4 * rows * cols, 4 * rows * cols, 4 * blocks];
  const params = packParams([blockRows, blockCols]);
  const outs = dispatchNew(rt, transposableMask24Kernel(), [w], sizes, blocks, params);
  const [pruned, mask, indices] = outs;
  return { pruned, mask, indices };
};
