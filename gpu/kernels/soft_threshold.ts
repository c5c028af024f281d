/**
 * Soft-threshold 2:4 pruning and the sums of the S-STE scale β on the GPU (SPEC §1.2–1.3), the
 * device twins of `softThreshold24` and `ssteScale` of `reference/soft_threshold.ts`.
 *
 * One thread per group of four (`vec4` loads). Magnitudes are compared as the integers
 * `bits & 0x7fffffff` (exact, immune to subnormal flushing); `τ` is the branch-free
 * second-smallest of SPEC §1.2 on those integers. A kept `w_i` with `|w_i| ≠ τ` becomes
 * `|w_i| − τ` (one float32 subtraction, correctly rounded: the reference's value) with the sign
 * bit of `w_i`; everything else is `+0`. A GPU that flushes subnormal results to zero may return
 * `±0` where the reference has a subnormal difference.
 *
 * β's sums: first `amax = max |w|` (two passes), then each workgroup of 256 threads (one group
 * each) reduces its `⟨W, S⟩`, `⟨S, S⟩` (recipe `"mse"`) or `‖W‖₁`, `‖S‖₁` (`"l1"`) in float32 with a
 * fixed tree, and one workgroup reduces those partial pairs. `W` and `S` are multiplied by the
 * power of two `2^(127 − e)` (`e` the exponent field of `amax`, clamped to `[1, 253]`), which brings
 * every entry below 4 in magnitude, so no sum overflows float32; β, a ratio, is unchanged. Every
 * term is non-negative (a kept `w·s` is `|w|·(|w| − τ)`), so float32 sums carry no cancellation;
 * the division is left to the host (in float64).
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, GRID_BUILTINS, LINEAR_WORKGROUP, packParams, WG_1D } from "./_params.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { dispatchNew } from "./_dispatch.ts";
import {
  assertDenseGroups,
  cachedSpec,
  type Dense24Encoder,
  encodeAbsMaxPartials,
  finalReduceSpec,
  workgroupReduceWgsl,
} from "./_sparse.ts";
import type { PruneBuffers } from "./prune.ts";

/** WGSL: the 2:4 keep flags (higher index wins ties) and the soft-thresholded group, as bits. */
const SOFT_THRESHOLD_WGSL = `
fn keep24(a: vec4<u32>) -> vec4<bool> {
  let r0 = u32(a.x > a.y) + u32(a.x > a.z) + u32(a.x > a.w);
  let r1 = u32(a.y >= a.x) + u32(a.y > a.z) + u32(a.y > a.w);
  let r2 = u32(a.z >= a.x) + u32(a.z >= a.y) + u32(a.z > a.w);
  let r3 = u32(a.w >= a.x) + u32(a.w >= a.y) + u32(a.w >= a.z);
  return vec4<u32>(r0, r1, r2, r3) >= vec4<u32>(2u);
}

// S_soft of one group given its float32 bits; returns the output bits.
fn soft_threshold24(b: vec4<u32>, keep: vec4<bool>) -> vec4<u32> {
  let a = b & vec4<u32>(0x7fffffffu);
  let tau = min(max(min(a.x, a.y), min(a.z, a.w)), min(max(a.x, a.y), max(a.z, a.w)));
  let diff = bitcast<vec4<u32>>(bitcast<vec4<f32>>(a) - vec4<f32>(bitcast<f32>(tau)));
  let signed = diff | (b & vec4<u32>(0x80000000u));
  return select(vec4<u32>(0u), signed, keep & (a != vec4<u32>(tau)));
}
`;

/**
 * The soft-threshold 2:4 kernel. Bindings: `w` (read, float32 bits), `pruned`, `mask` (float32
 * 0/1), uniform `{ groups }`. One thread per group.
 *
 * @returns The kernel, key `soft-threshold24`.
 * @example
 * ```ts
 * import { softThreshold24Kernel } from "./soft_threshold.ts";
 * if (softThreshold24Kernel().key !== "soft-threshold24") throw new Error("unexpected");
 * ```
 */
export function softThreshold24Kernel(): KernelSpec {
  return cachedSpec(
    "soft-threshold24",
    () =>
      `// Soft-threshold 2:4 (SPEC 1.2), one thread per group of four.
${SOFT_THRESHOLD_WGSL}
${
        wgslBindings("groups: u32", [
          "read w: array<vec4<u32>>",
          "read_write pruned: array<vec4<u32>>",
          "read_write mask: array<vec4<f32>>",
        ])
      }

${wgslItemMain("g", "p.groups")}
  let b = w[g];
  let keep = keep24(b & vec4<u32>(0x7fffffffu));
  pruned[g] = soft_threshold24(b, keep);
  mask[g] = select(vec4<f32>(0.0), vec4<f32>(1.0), keep);
}
`,
  );
}

/** The two β recipes whose sums run on the GPU (`"none"` needs no sums). */
export type SsteSumRecipe = "mse" | "l1";

/**
 * The main pass of β's sums: each workgroup writes its partial `(numerator, denominator)` pair of
 * the power-of-two-scaled `W` and `S`. Bindings: `w` (read), `amax` (one `u32`, the bits of
 * `max |w|`), `partials` (2 float32 per workgroup), uniform `{ groups }`.
 *
 * @param recipe `"mse"`: `(⟨W, S⟩, ⟨S, S⟩)`; `"l1"`: `(‖W‖₁, ‖S‖₁)`.
 * @returns The kernel, key `sste-sums-{recipe}`.
 * @throws {TypeError} If the recipe is unknown.
 * @example
 * ```ts
 * import { ssteSumsKernel } from "./soft_threshold.ts";
 * if (ssteSumsKernel("mse").key !== "sste-sums-mse") throw new Error("unexpected");
 * ```
 */
export function ssteSumsKernel(recipe: SsteSumRecipe): KernelSpec {
  if (recipe !== "mse" && recipe !== "l1") {
    throw new TypeError(`Cannot build the S-STE sums kernel: unknown recipe "${recipe}"`);
  }
  const terms = recipe === "mse"
    ? "let num = dot(x, s); let den = dot(s, s);"
    : "let num = dot(abs(x), vec4<f32>(1.0)); let den = dot(abs(s), vec4<f32>(1.0));";
  return cachedSpec(
    `sste-sums-${recipe}`,
    () =>
      `// Partial sums of the S-STE scale (SPEC 1.3), recipe ${recipe}: one pair per workgroup.
${SOFT_THRESHOLD_WGSL}
${
        wgslBindings("groups: u32", [
          "read w: array<vec4<u32>>",
          "read amax: array<u32>",
          "read_write partials: array<f32>",
        ])
      }
var<workgroup> red: array<f32, ${2 * WG_1D}>;

@compute @workgroup_size(${WG_1D})
fn main(${GRID_BUILTINS}) {
  let wg = ${LINEAR_WORKGROUP};
  let g = wg * ${WG_1D}u + lid;
  var pair = vec2<f32>(0.0);
  if (g < p.groups) {
    // 2^(127 - e): exact scaling that keeps every |entry| below 4.
    let k = bitcast<f32>((254u - clamp(amax[0] >> 23u, 1u, 253u)) << 23u);
    let b = w[g];
    let s = k * bitcast<vec4<f32>>(soft_threshold24(b, keep24(b & vec4<u32>(0x7fffffffu))));
    let x = k * bitcast<vec4<f32>>(b);
    ${terms}
    pair = vec2<f32>(num, den);
  }
  red[2u * lid] = pair.x;
  red[2u * lid + 1u] = pair.y;
${workgroupReduceWgsl({ type: "f32", op: "sum", components: 2 }, WG_1D)}
  if (lid == 0u) {
    partials[2u * wg] = red[0];
    partials[2u * wg + 1u] = red[1];
  }
}
`,
  );
}

/**
 * Records soft-threshold 2:4 pruning of a row-major float32 matrix (SPEC §1.2; the device twin of
 * `softThreshold24`). `w` is not modified.
 *
 * @param rt The runtime.
 * @param w The matrix, `rows · cols` float32 values.
 * @param rows Number of rows.
 * @param cols Row length, a multiple of 4.
 * @returns New pooled buffers: `S_soft(w)` and the hard 2:4 mask (float32 0/1).
 * @throws {RangeError} If a size is invalid, `cols % 4 !== 0` or `w` is too small.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeSoftThreshold24 } from "./soft_threshold.ts";
 * const rt = await GpuRuntime.create();
 * const { pruned } = encodeSoftThreshold24(rt, rt.upload(new Float32Array([0.1, -3, 2, 0.5])), 1, 4);
 * const out = new Float32Array(await rt.read(pruned, 16));
 * rt.destroy();
 * if (out.join() !== "0,-2.5,1.5,0") throw new Error("unexpected");
 * ```
 */
export const encodeSoftThreshold24: Dense24Encoder<PruneBuffers> = (rt, w, rows, cols) => {
  const action = "soft-threshold to 2:4 on the GPU";
  const groups = assertDenseGroups(w, "w", rows, cols, action);
  const spec = softThreshold24Kernel(), sizes = [16 * groups, 16 * groups];
  const [pruned, mask] = dispatchNew(rt, spec, [w], sizes, groups, packParams([groups]));
  return { pruned, mask };
};

/**
 * Records the sums of the S-STE scale β (SPEC §1.3): a new pooled buffer of two float32 values,
 * `c²·[⟨W, S⟩, ⟨S, S⟩]` for `"mse"` or `c·[‖W‖₁, ‖S‖₁]` for `"l1"`, with `S = S_soft(W)` and `c`
 * the power of two described in the module documentation. Then `β = out[0] / out[1]`, or 1 when
 * `out[1] = 0`. Weights must be finite (not checked here).
 *
 * @param rt The runtime.
 * @param w The weight, `rows · cols` float32 values.
 * @param rows Number of rows.
 * @param cols Row length, a multiple of 4.
 * @param recipe `"mse"` (default) or `"l1"`.
 * @returns The two sums (the caller frees the buffer).
 * @throws {RangeError} If a size is invalid, `cols % 4 !== 0` or `w` is too small.
 * @throws {TypeError} If the recipe is unknown.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeSsteSums } from "./soft_threshold.ts";
 * const rt = await GpuRuntime.create();
 * const sums = encodeSsteSums(rt, rt.upload(new Float32Array([0.1, -3, 2, 0.5])), 1, 4);
 * const [num, den] = new Float32Array(await rt.read(sums, 8));
 * rt.destroy();
 * if (num / den !== 10.5 / 8.5) throw new Error("unexpected"); // SPEC §9: β = 21/17
 * ```
 */
export function encodeSsteSums(
  rt: GpuRuntime,
  w: GPUBuffer,
  rows: number,
  cols: number,
  recipe: SsteSumRecipe = "mse",
): GPUBuffer {
  const action = "compute the S-STE scale on the GPU";
  const spec = ssteSumsKernel(recipe);
  const groups = assertDenseGroups(w, "w", rows, cols, action);
  const max = encodeAbsMaxPartials(rt, w, 4 * groups);
  const amax = rt.alloc(4);
  rt.dispatch(
    finalReduceSpec({ type: "u32", op: "max", components: 1 }),
    [max.partials, amax],
    [1],
    packParams([max.count]),
  );
  rt.free(max.partials);
  const workgroups = Math.max(1, Math.ceil(groups / WG_1D));
  const partials = rt.alloc(8 * workgroups);
  const out = rt.alloc(8);
  rt.dispatch(spec, [w, amax, partials], grid(groups), packParams([groups]));
  rt.free(amax);
  if (groups === 0) {
    rt.write(partials, new Float32Array(2)); // no workgroup ran: the sums are 0
  }
  rt.dispatch(
    finalReduceSpec({ type: "f32", op: "sum", components: 2 }),
    [partials, out],
    [1],
    packParams([workgroups]),
  );
  rt.free(partials);
  return out;
}
