/**
 * MVUE 2:4 on the GPU (SPEC §2.7), the device twin of `mvue24` / `mvue24WithUniforms` of
 * `reference/mvue.ts`: group `q` (row-major group order) draws with `u0`, `u1` = words 0 and 1 of
 * the Philox draw `q` of `(seed, stream)` (the WGSL generator of `./rng.ts`, bit-identical to the
 * reference's), or with explicit uniforms `uniforms[2q]`, `uniforms[2q + 1]`.
 *
 * The kernel performs the reference's documented float32 operations in the same order (`a_i`,
 * `S`, `t_i`, `R_i` as the sum of the other three, the two inclusive inverse-CDF scans, `s_k`,
 * `p_k`, `x_k / p_k`). Additions, subtractions and multiplications are correctly rounded in WGSL,
 * so with a correctly rounded division the drawn positions are the reference's exactly. WGSL only
 * promises division to 2.5 ULP (and a compiler may fuse `t_k + a_k·s_k` into one FMA): on such a
 * device a group whose uniform lies within a few float32 ULPs of a cumulative boundary can pick the
 * neighbouring position, and the values differ in their last bits.
 *
 * Device inputs are not validated (the reference rejects non-finite values and group sums above
 * 2^126); for them the output is unspecified.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { packParams } from "./_params.ts";
import { dispatchNew } from "./_dispatch.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { assertBuffer, assertDenseGroups, assertSizes, cachedSpec, f32Exact } from "./_sparse.ts";
import { assertU32, PHILOX_WGSL, philoxKey } from "./rng.ts";

/** `ε` of SPEC §2.7 as a float32 value, the reference's `MVUE_EPSILON`. */
const EPSILON = Math.fround(1.19209e-7);

const MVUE_WGSL = `
// MVUE 2:4 of one group x with uniforms (u0, u1), in the float32 order of reference/mvue.ts.
fn mvue24_group(x: vec4<f32>, u0: f32, u1: f32) -> vec4<f32> {
  let eps = ${f32Exact(EPSILON)};
  let a = abs(x) + vec4<f32>(eps);
  let sum = ((a.x + a.y) + a.z) + a.w;
  let t = a / vec4<f32>(sum);
  let rest = vec4<f32>((a.y + a.z) + a.w, (a.x + a.z) + a.w, (a.x + a.y) + a.w, (a.x + a.y) + a.z);

  // First pick: inclusive inverse CDF over t, the lower index on equality; fallback 3.
  var first = 3u;
  var c = 0.0;
  for (var i = 0u; i < 4u; i++) {
    c = c + t[i];
    if (u0 <= c) {
      first = i;
      break;
    }
  }
  // Second pick among the other three with probabilities a_j / R_first; fallback the last one.
  var second = select(3u, 2u, first == 3u);
  c = 0.0;
  let r = rest[first];
  for (var j = 0u; j < 4u; j++) {
    if (j == first) { continue; }
    c = c + a[j] / r;
    if (u1 <= c) {
      second = j;
      break;
    }
  }

  let q = t / rest;
  var out = vec4<f32>(0.0);
  for (var n = 0u; n < 2u; n++) {
    let k = select(second, first, n == 0u);
    var s = 0.0;
    for (var m = 0u; m < 4u; m++) {
      if (m != k) { s = s + q[m]; }
    }
    let pk = t[k] + a[k] * s;
    out[k] = x[k] / pk;
  }
  return out;
}
`;

/**
 * The MVUE 2:4 kernel. With `uniforms: "philox"` the bindings are `g` (read), `out`, uniform
 * `{ groups, stream, key0, key1 }`; with `uniforms: "explicit"` they are `g`, `uniforms` (2
 * float32 per group), `out`, uniform `{ groups }`. One thread per group.
 *
 * @param options `uniforms`: where the two uniforms of each group come from.
 * @returns The kernel, key `mvue24-philox` or `mvue24-explicit`.
 * @throws {TypeError} If `uniforms` is neither `"philox"` nor `"explicit"`.
 * @example
 * ```ts
 * import { mvue24Kernel } from "./mvue.ts";
 * if (mvue24Kernel({ uniforms: "philox" }).key !== "mvue24-philox") throw new Error("unexpected");
 * ```
 */
export function mvue24Kernel(options: { uniforms: "philox" | "explicit" }): KernelSpec {
  const source = options?.uniforms;
  if (source !== "philox" && source !== "explicit") {
    throw new TypeError(
      `Cannot build the MVUE 2:4 kernel: uniforms must be "philox" or "explicit", got ${source}`,
    );
  }
  return cachedSpec(`mvue24-${source}`, () => {
    const head = source === "philox"
      ? `${PHILOX_WGSL}
${
        wgslBindings("groups: u32, stream: u32, key0: u32, key1: u32", [
          "read g: array<vec4<f32>>",
          "read_write out: array<vec4<f32>>",
        ])
      }`
      : `${
        wgslBindings("groups: u32", [
          "read g: array<vec4<f32>>",
          "read uniforms: array<vec2<f32>>",
          "read_write out: array<vec4<f32>>",
        ])
      }`;
    const draw = source === "philox"
      ? "let u = philox_uniform4(vec2<u32>(p.key0, p.key1), p.stream, q).xy;"
      : "let u = uniforms[q];";
    return `// MVUE 2:4 (SPEC 2.7), uniforms: ${source}; one thread per group of four.
${head}
${MVUE_WGSL}
${wgslItemMain("q", "p.groups")}
  ${draw}
  out[q] = mvue24_group(g[q], u.x, u.y);
}
`;
  });
}

/**
 * Records MVUE 2:4 of a row-major float32 gradient with Philox uniforms (SPEC §2.7; the device twin
 * of `mvue24(g, { seed, stream })`). `g` is not modified.
 *
 * @param rt The runtime.
 * @param g The gradient, `rows · cols` finite float32 values.
 * @param rows Number of rows.
 * @param cols Row length, a multiple of 4.
 * @param seed The generator seed, an integer in `[0, 2^53)`.
 * @param stream The generator stream, an integer in `[0, 2^32)` (default 0).
 * @returns A new pooled buffer, `rows · cols` float32 values, 2:4 sparse.
 * @throws {RangeError} If a size, the seed or the stream is invalid, `cols % 4 !== 0`, `g` is too
 * small, or there are 2^32 groups or more.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeMvue24 } from "./mvue.ts";
 * const rt = await GpuRuntime.create();
 * const out = encodeMvue24(rt, rt.upload(new Float32Array([0.1, -3, 2, 0.5])), 1, 4, 1);
 * const v = new Float32Array(await rt.read(out, 16));
 * rt.destroy();
 * if (v.filter((x) => x !== 0).length !== 2) throw new Error("expected two kept values");
 * ```
 */
export function encodeMvue24(
  rt: GpuRuntime,
  g: GPUBuffer,
  rows: number,
  cols: number,
  seed: number,
  stream = 0,
): GPUBuffer {
  const action = "sample MVUE 2:4 on the GPU";
  const groups = assertDenseGroups(g, "g", rows, cols, action);
  const [k0, k1] = philoxKey(seed);
  assertU32(stream, "stream", action);
  assertSizes({ groups }, action);
  const spec = mvue24Kernel({ uniforms: "philox" }), params = packParams([groups, stream, k0, k1]);
  return dispatchNew(rt, spec, [g], [16 * groups], groups, params)[0];
}

/**
 * Records MVUE 2:4 with explicit uniforms (the device twin of `mvue24WithUniforms`): group `q`
 * draws with `uniforms[2q]` and `uniforms[2q + 1]`, which must lie strictly inside `(0, 1)` (not
 * checked here).
 *
 * @param rt The runtime.
 * @param g The gradient, `rows · cols` finite float32 values.
 * @param uniforms `rows · cols / 2` float32 values (two per group).
 * @param rows Number of rows.
 * @param cols Row length, a multiple of 4.
 * @returns A new pooled buffer, `rows · cols` float32 values.
 * @throws {RangeError} If a size is invalid, `cols % 4 !== 0` or a buffer is too small.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeMvue24WithUniforms } from "./mvue.ts";
 * const rt = await GpuRuntime.create();
 * const g = rt.upload(new Float32Array([0.1, -3, 2, 0.5]));
 * const out = encodeMvue24WithUniforms(rt, g, rt.upload(new Float32Array([0.5, 0.5])), 1, 4);
 * const v = new Float32Array(await rt.read(out, 16));
 * rt.destroy();
 * // SPEC §9: (0.5, 0.5) picks positions 1 and 2.
 * if (v[0] !== 0 || v[3] !== 0 || Math.abs(v[1] + 3.34973) > 1e-5) throw new Error("unexpected");
 * ```
 */
export function encodeMvue24WithUniforms(
  rt: GpuRuntime,
  g: GPUBuffer,
  uniforms: GPUBuffer,
  rows: number,
  cols: number,
): GPUBuffer {
  const action = "sample MVUE 2:4 on the GPU";
  const groups = assertDenseGroups(g, "g", rows, cols, action);
  assertBuffer(uniforms, 8 * groups, "uniforms", action);
  const spec = mvue24Kernel({ uniforms: "explicit" });
  return dispatchNew(rt, spec, [g, uniforms], [16 * groups], groups, packParams([groups]))[0];
}
