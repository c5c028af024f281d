/**
 * Compressed 2:4 storage on the GPU (SPEC §1.5), the device twins of `compress24` and
 * `decompress24` of `reference/compress.ts`, in the same layout: `values [rows, cols / 2]` holds
 * each group's two kept entries in ascending column order; the metadata holds one 4-bit code
 * `idx0 | idx1 << 2` per group, eight per `u32` (flat group `g` in bits `4·(g % 8)..` of word
 * `⌊g / 8⌋`), unused high bits 0.
 *
 * Compression keeps each group's top two by the hard-pruning rule (larger `|w|`, ties to the
 * higher index; magnitudes compared as `bits & 0x7fffffff`), which for a 2:4 input are its non-zero
 * positions, padded like the reference when a group has fewer than two non-zeros. A group with
 * more than two non-zeros, which the reference rejects, is compressed as its 2:4 pruning. Values
 * are copied as bits both ways. Decompression trusts its metadata: an invalid code (the reference
 * rejects it) writes to unspecified positions of its own group.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { LINEAR_WORKGROUP, packParams, WG_1D } from "./_params.ts";
import { wgslBindings, wgslItemEntry, wgslItemMain } from "./_wgsl.ts";
import { dispatchNew } from "./_dispatch.ts";
import {
  assertBuffer,
  assertDenseGroups,
  assertGroupsOfFour,
  cachedSpec,
  type Dense24Encoder,
} from "./_sparse.ts";

/**
 * The compression kernel: one thread per group, 256 groups (32 metadata words) per workgroup.
 * Bindings: `m` (read, float32 bits), `values`, `meta`, uniform `{ groups }`.
 *
 * @returns The kernel, key `compress24`.
 * @example
 * ```ts
 * import { compress24Kernel } from "./compress.ts";
 * if (compress24Kernel().key !== "compress24") throw new Error("unexpected");
 * ```
 */
export function compress24Kernel(): KernelSpec {
  return cachedSpec(
    "compress24",
    () =>
      `// Compressed 2:4 (SPEC 1.5): two values and a 4-bit code per group, 8 codes per u32.
${
        wgslBindings("groups: u32", [
          "read m: array<vec4<u32>>",
          "read_write values: array<vec2<u32>>",
          "read_write metadata: array<u32>",
        ])
      }
var<workgroup> codes: array<u32, ${WG_1D}>;

${wgslItemEntry("g")}
  var code = 0u;
  if (g < p.groups) {
    let b = m[g];
    let a = b & vec4<u32>(0x7fffffffu);
    // Ranks under "larger magnitude, then higher index"; the top two are kept.
    let keep = vec4<u32>(
      u32(a.x > a.y) + u32(a.x > a.z) + u32(a.x > a.w),
      u32(a.y >= a.x) + u32(a.y > a.z) + u32(a.y > a.w),
      u32(a.z >= a.x) + u32(a.z >= a.y) + u32(a.z > a.w),
      u32(a.w >= a.x) + u32(a.w >= a.y) + u32(a.w >= a.z),
    ) >= vec4<u32>(2u);
    var i0 = 4u;
    var i1 = 4u;
    for (var c = 0u; c < 4u; c++) {
      if (keep[c]) {
        if (i0 == 4u) { i0 = c; } else { i1 = c; }
      }
    }
    values[g] = vec2<u32>(b[i0], b[i1]);
    code = i0 | (i1 << 2u);
  }
  codes[lid] = code;
  workgroupBarrier();
  if (lid < ${WG_1D / 8}u) {
    let first = ${LINEAR_WORKGROUP} * ${WG_1D}u + 8u * lid;
    if (first < p.groups) {
      var word = 0u;
      for (var k = 0u; k < 8u; k++) { word |= codes[8u * lid + k] << (4u * k); }
      metadata[first / 8u] = word;
    }
  }
}
`,
  );
}

/**
 * The decompression kernel: one thread per group. Bindings: `values`, `meta`, `out` (float32
 * bits), uniform `{ groups }`.
 *
 * @returns The kernel, key `decompress24`.
 * @example
 * ```ts
 * import { decompress24Kernel } from "./compress.ts";
 * if (decompress24Kernel().key !== "decompress24") throw new Error("unexpected");
 * ```
 */
export function decompress24Kernel(): KernelSpec {
  return cachedSpec(
    "decompress24",
    () =>
      `// Decompress 2:4 (SPEC 1.5): each group's two values to the positions its code names.
${
        wgslBindings("groups: u32", [
          "read values: array<vec2<u32>>",
          "read metadata: array<u32>",
          "read_write out: array<vec4<u32>>",
        ])
      }

${wgslItemMain("g", "p.groups")}
  let code = (metadata[g >> 3u] >> (4u * (g & 7u))) & 0xfu;
  let v = values[g];
  let at = vec4<u32>(0u, 1u, 2u, 3u);
  out[g] = select(vec4<u32>(0u), vec4<u32>(v.x), at == vec4<u32>(code & 3u)) |
    select(vec4<u32>(0u), vec4<u32>(v.y), at == vec4<u32>(code >> 2u));
}
`,
  );
}

/** Output buffers of {@linkcode encodeCompress24}. */
export interface Compressed24Buffers {
  /** `rows · cols / 2` float32 values: each group's two kept entries, ascending column. */
  values: GPUBuffer;
  /** `⌈rows · cols / 32⌉` `u32` words of 4-bit codes. */
  meta: GPUBuffer;
}

/**
 * Records the compression of a 2:4 row-major float32 matrix (SPEC §1.5; the device twin of
 * `compress24`). `m` is not modified.
 *
 * @param rt The runtime.
 * @param m The 2:4 matrix, `rows · cols` float32 values.
 * @param rows Number of rows.
 * @param cols Row length, a multiple of 4.
 * @returns New pooled buffers: values and metadata.
 * @throws {RangeError} If a size is invalid, `cols % 4 !== 0` or `m` is too small.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeCompress24 } from "./compress.ts";
 * const rt = await GpuRuntime.create();
 * const { values, meta } = encodeCompress24(rt, rt.upload(new Float32Array([0, -3, 2, 0, 4, 0, 0, 1])), 1, 8);
 * const [v, c] = await rt.readMany([{ buffer: values, bytes: 16 }, { buffer: meta, bytes: 4 }]);
 * rt.destroy();
 * if (new Float32Array(v).join() !== "-3,2,4,1" || new Uint32Array(c)[0] !== (9 | (12 << 4))) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export const encodeCompress24: Dense24Encoder<Compressed24Buffers> = (rt, m, rows, cols) => {
  const action = "compress to 2:4 on the GPU";
  const groups = assertDenseGroups(m, "m", rows, cols, action);
  const sizes = [8 * groups, 4 * Math.ceil(groups / 8)], params = packParams([groups]);
  const [values, meta] = dispatchNew(rt, compress24Kernel(), [m], sizes, groups, params);
  return { values, meta };
};

/**
 * Records the expansion of a compressed 2:4 matrix to dense `[rows, cols]` (SPEC §1.5; the device
 * twin of `decompress24`). Inputs are not modified; the metadata is trusted (validate it on the
 * host).
 *
 * @param rt The runtime.
 * @param values `rows · cols / 2` float32 values.
 * @param meta `⌈rows · cols / 32⌉` `u32` words.
 * @param rows Number of rows.
 * @param cols Dense row length, a multiple of 4.
 * @returns A new pooled buffer, the dense matrix.
 * @throws {RangeError} If a size is invalid, `cols % 4 !== 0` or a buffer is too small.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeDecompress24 } from "./compress.ts";
 * const rt = await GpuRuntime.create();
 * const dense = encodeDecompress24(rt, rt.upload(new Float32Array([-3, 2])), rt.upload(Uint32Array.of(9)), 1, 4);
 * const d = new Float32Array(await rt.read(dense, 16));
 * rt.destroy();
 * if (d.join() !== "0,-3,2,0") throw new Error("unexpected");
 * ```
 */
export function encodeDecompress24(
  rt: GpuRuntime,
  values: GPUBuffer,
  meta: GPUBuffer,
  rows: number,
  cols: number,
): GPUBuffer {
  const action = "decompress from 2:4 on the GPU";
  const groups = assertGroupsOfFour(rows, cols, action);
  assertBuffer(values, 8 * groups, "values", action);
  assertBuffer(meta, 4 * Math.ceil(groups / 8), "meta", action);
  const params = packParams([groups]);
  return dispatchNew(rt, decompress24Kernel(), [values, meta], [16 * groups], groups, params)[0];
}
