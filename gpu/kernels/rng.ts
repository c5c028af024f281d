/**
 * The project's counter-based generator in WGSL: Philox4x32-10 with the high word of each product
 * formed from 16-bit halves, keyed and indexed exactly as `reference/rng.ts` (SPEC §2.7), so a
 * kernel draws bit for bit the uniforms the TypeScript reference draws.
 *
 * Definition (the same as the reference's): key `(seed mod 2^32, floor(seed / 2^32))`; draw
 * `index` of stream `stream` is Philox4x32-10 of the counter `(index, stream, 0, 0)`; an output
 * word `x` maps to the uniform `(2·(x >> 9) + 1)·2^-24`, exact in float32 and strictly inside
 * `(0, 1)`. Every step is a 32-bit unsigned integer operation except the final exact conversion,
 * so no GPU rounding mode can change a draw.
 *
 * @module
 */

import { PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1 } from "../../reference/rng.ts";
import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";

/**
 * WGSL source of the generator, to paste into any kernel that needs random numbers (MVUE,
 * dropout). It declares, all prefixed `philox_` to stay clear of the host kernel's names:
 *
 * - `fn philox_mulhi(a: u32, b: u32) -> u32`: high word of the 64-bit product, from 16-bit halves;
 * - `fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32>`: the ten-round bijection;
 * - `fn philox_to_uniform(x: u32) -> f32`: `(2·(x >> 9) + 1)·2^-24`;
 * - `fn philox_uniform4(key: vec2<u32>, stream: u32, index: u32) -> vec4<f32>`: the four uniforms
 *   of draw `index` of `stream`, equal to `uniform4(seed, stream, index)` of `reference/rng.ts`
 *   when `key` is {@linkcode philoxKey}`(seed)`.
 */
export const PHILOX_WGSL: string = `
const PHILOX_M0: u32 = ${PHILOX_M0}u;
const PHILOX_M1: u32 = ${PHILOX_M1}u;
const PHILOX_W0: u32 = ${PHILOX_W0}u;
const PHILOX_W1: u32 = ${PHILOX_W1}u;

fn philox_mulhi(a: u32, b: u32) -> u32 {
  let a_lo = a & 0xffffu;
  let a_hi = a >> 16u;
  let b_lo = b & 0xffffu;
  let b_hi = b >> 16u;
  let ll = a_lo * b_lo;
  let lh = a_lo * b_hi;
  let hl = a_hi * b_lo;
  let hh = a_hi * b_hi;
  // Bits 16..47 of the product; the carry out of the low word comes from these three terms.
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var round = 0u; round < 10u; round++) {
    if (round > 0u) {
      k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
    }
    let hi0 = philox_mulhi(PHILOX_M0, c.x);
    let lo0 = PHILOX_M0 * c.x;
    let hi1 = philox_mulhi(PHILOX_M1, c.z);
    let lo1 = PHILOX_M1 * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}

fn philox_to_uniform(x: u32) -> f32 {
  // 2·(x >> 9) + 1 < 2^24 converts exactly; the power-of-two scale is exact too.
  return f32(((x >> 9u) << 1u) | 1u) * 5.9604644775390625e-8;
}

fn philox_uniform4(key: vec2<u32>, stream: u32, index: u32) -> vec4<f32> {
  let w = philox4x32_10(vec4<u32>(index, stream, 0u, 0u), key);
  return vec4<f32>(
    philox_to_uniform(w.x),
    philox_to_uniform(w.y),
    philox_to_uniform(w.z),
    philox_to_uniform(w.w),
  );
}
`;

const TWO_POW_32 = 4294967296;

/**
 * The Philox key of a seed, as `reference/rng.ts` defines it: `[seed mod 2^32, floor(seed / 2^32)]`.
 *
 * @param seed An integer in `[0, 2^53)`.
 * @returns The two key words.
 * @throws {RangeError} If the seed is not an integer in `[0, 2^53)`.
 * @example
 * ```ts
 * import { philoxKey } from "./rng.ts";
 * const [k0, k1] = philoxKey(2 ** 32 + 5);
 * if (k0 !== 5 || k1 !== 1) throw new Error("unexpected");
 * ```
 */
export function philoxKey(seed: number): [number, number] {
  assertSeed(seed, "draw Philox uniforms");
  return [seed % TWO_POW_32, Math.floor(seed / TWO_POW_32)];
}

/** Checks a seed the way `reference/rng.ts` does (same message). */
export function assertSeed(seed: number, action: string): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`Cannot ${action}: the seed must be an integer in [0, 2^53), got ${seed}`);
  }
}

/** Checks a stream or index the way `reference/rng.ts` does (same message). */
export function assertU32(value: number, name: string, action: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Cannot ${action}: ${name} must be an integer in [0, 2^32), got ${value}`);
  }
}

let uniformsSpec: KernelSpec | undefined;

/**
 * The kernel filling a buffer with `count` uniforms of one stream, laid out as `uniforms` of
 * `reference/rng.ts`: entry `i` is word `i % 4` of draw `floor(i / 4)`. One thread per draw
 * (four entries).
 *
 * @returns The kernel (key `philox-uniforms`).
 * @example
 * ```ts
 * import { uniformsKernel } from "./rng.ts";
 * if (!uniformsKernel().code.includes("philox4x32_10")) throw new Error("unexpected");
 * ```
 */
export function uniformsKernel(): KernelSpec {
  uniformsSpec ??= {
    key: "philox-uniforms",
    code: `${PHILOX_WGSL}
${
      wgslBindings("count: u32, stream: u32, key0: u32, key1: u32", [
        "read_write out: array<f32>",
      ])
    }

${philoxDrawsWgsl("out[i] = u[j];")}
`,
  };
  return uniformsSpec;
}

/**
 * Records the generation of `count` uniforms of `stream` under `seed` (the layout of
 * `uniforms(seed, stream, count)` in `reference/rng.ts`).
 *
 * @param rt The runtime.
 * @param seed An integer in `[0, 2^53)`.
 * @param stream An integer in `[0, 2^32)`.
 * @param count How many uniforms, an integer in `[0, 2^31]` (and what one buffer binding holds).
 * @returns A new pooled buffer of `count` float32 values (the caller frees it).
 * @throws {RangeError} If an argument is out of range.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeUniforms } from "./rng.ts";
 * const rt = await GpuRuntime.create();
 * const u = new Float32Array(await rt.read(encodeUniforms(rt, 42, 0, 8), 32));
 * rt.destroy();
 * if (!u.every((v) => v > 0 && v < 1)) throw new Error("out of range");
 * ```
 */
export function encodeUniforms(
  rt: GpuRuntime,
  seed: number,
  stream: number,
  count: number,
): GPUBuffer {
  const action = "draw Philox uniforms";
  const [k0, k1] = philoxKey(seed);
  assertU32(stream, "stream", action);
  if (!Number.isInteger(count) || count < 0 || count > 2 ** 31) {
    throw new RangeError(`Cannot ${action}: count must be an integer in [0, 2^31], got ${count}`);
  }
  const out = rt.alloc(4 * count);
  if (count === 0) return out;
  rt.dispatch(
    uniformsKernel(),
    [out],
    grid(Math.ceil(count / 4)),
    packParams([count, stream, k0, k1]),
  );
  return out;
}

/**
 * The entry point of a kernel with one thread per Philox draw (four elements `i = 4·draw + j`,
 * each below `p.count`, with `u[j]` its uniform); `store` writes element `i`. Needs a uniform `p`
 * with `count`, `stream`, `key0`, `key1`, and {@linkcode PHILOX_WGSL}.
 */
export function philoxDrawsWgsl(store: string): string {
  return `${wgslItemMain("draw", "(p.count + 3u) / 4u")}
  let u = philox_uniform4(vec2<u32>(p.key0, p.key1), p.stream, draw);
  for (var j = 0u; j < 4u; j++) {
    let i = 4u * draw + j;
    if (i < p.count) { ${store} }
  }
}`;
}
