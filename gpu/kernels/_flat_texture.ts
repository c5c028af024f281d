/**
 * Reading storage buffers through textures on software adapters. On llvmpipe a storage load runs
 * a per-lane loop with a bounds check per component (~8 ns per float per lane on this machine),
 * while `textureLoad` of an `rgba32float` texel is one vector gather (~3.5 ns per four floats)
 * and `copyBufferToTexture` is a memcpy (~0.15 ms per MiB). A kernel that reads the same data many
 * times (a matmul operand, cross-entropy's logits) therefore copies it into a texture first.
 *
 * A buffer is copied unchanged into a *flat* texture, 8192 texels wide: texel `t` (floats
 * `4t … 4t+3`) sits at `(t mod 8192, ⌊t / 8192⌋)` ({@linkcode flatTexelWgsl}). The textures are
 * per-runtime scratch, one per slot, grown on demand to a power of two of rows and reused by the
 * next call: every call submits its own command buffer (copies, then the kernel), after the work
 * recorded so far, so queue order keeps one call's texture contents from another's.
 *
 * Textures cannot be bound through `GpuRuntime.dispatch`, so {@linkcode dispatchWithFlatTextures}
 * flushes the runtime and submits the copies and the dispatch itself.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";

/** Row length in texels of a flat texture. */
export const FLAT_TEXTURE_WIDTH = 8192;

/** Most texels a flat texture holds (8192 rows, WebGPU's default 2-D texture limit). */
export const MAX_FLAT_TEXELS: number = FLAT_TEXTURE_WIDTH * 8192;

/**
 * A WGSL function `fn <name>(t: u32) -> vec4<f32>` that reads texel `t` of the flat texture bound
 * as `texture`.
 *
 * @param name The function's name.
 * @param texture The texture variable's name.
 * @returns The WGSL function.
 */
export function flatTexelWgsl(name: string, texture: string): string {
  const shift = Math.log2(FLAT_TEXTURE_WIDTH);
  return `fn ${name}(t: u32) -> vec4<f32> {
  return textureLoad(${texture}, vec2<u32>(t & ${FLAT_TEXTURE_WIDTH - 1}u, t >> ${shift}u), 0);
}`;
}

interface Scratch {
  textures: ({ texture: GPUTexture; view: GPUTextureView; rows: number } | undefined)[];
  params: GPUBuffer;
}
const scratch = new WeakMap<GpuRuntime, Scratch>();

function scratchOf(rt: GpuRuntime): Scratch {
  let s = scratch.get(rt);
  if (!s) {
    const params = rt.device.createBuffer({
      size: 64,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: "flat-texture-params",
    });
    s = { textures: [], params };
    scratch.set(rt, s);
  }
  return s;
}

function slotTexture(rt: GpuRuntime, slot: number, texels: number) {
  const s = scratchOf(rt);
  const rows = Math.max(1, Math.ceil(texels / FLAT_TEXTURE_WIDTH));
  const have = s.textures[slot];
  if (have && have.rows >= rows) return have;
  // A power of two of rows, so a run settles on one texture per slot; the replaced texture lives
  // on until the work already submitted with it has finished.
  const size = Math.min(8192, 1 << Math.ceil(Math.log2(rows)));
  const texture = rt.device.createTexture({
    size: [FLAT_TEXTURE_WIDTH, size],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    label: `flat-texture-${slot}`,
  });
  s.textures[slot] = { texture, view: texture.createView(), rows: size };
  return s.textures[slot]!;
}

/** A buffer to read through a flat texture. */
export interface FlatTextureSource {
  /** The buffer (its first `4·texels` floats are copied). */
  buffer: GPUBuffer;
  /** Texels to copy (floats / 4). */
  texels: number;
}

/** One dispatch of {@linkcode dispatchWithFlatTextures}. */
export interface FlatTextureDispatch {
  /** The kernel: textures at bindings `0 … t−1`, then `buffers`, then the uniform `params`. */
  spec: KernelSpec;
  /** Sources of the textures, in binding order (one scratch slot each). */
  textures: readonly FlatTextureSource[];
  /** Storage buffers, bound after the textures. */
  buffers: readonly GPUBuffer[];
  /** Uniform parameters (at most 64 bytes), bound last. */
  params: Uint32Array;
  /** Workgroup counts. */
  workgroups: readonly number[];
}

/**
 * Submits the work recorded so far, then one command buffer that copies each source into its
 * flat texture and runs `d.spec`.
 *
 * @param rt The runtime.
 * @param d The dispatch.
 * @throws {RangeError} If a source exceeds {@linkcode MAX_FLAT_TEXELS} or the parameters 64 bytes.
 */
export function dispatchWithFlatTextures(rt: GpuRuntime, d: FlatTextureDispatch): void {
  for (const src of d.textures) {
    if (!(src.texels <= MAX_FLAT_TEXELS)) {
      throw new RangeError(
        `Cannot read a buffer through a texture: ${src.texels} texels exceed ${MAX_FLAT_TEXELS}`,
      );
    }
  }
  if (d.params.byteLength > 64) {
    throw new RangeError(
      `Cannot dispatch ${d.spec.key}: ${d.params.byteLength} bytes of parameters exceed 64`,
    );
  }
  const pipeline = rt.pipeline(d.spec);
  const slots = d.textures.map((src, i) => slotTexture(rt, i, src.texels));
  rt.flush(); // the sources' producers run first
  const { params } = scratchOf(rt);
  rt.write(params, d.params);
  const encoder = rt.device.createCommandEncoder();
  const bytesPerRow = FLAT_TEXTURE_WIDTH * 16;
  d.textures.forEach(({ buffer, texels }, i) => {
    const texture = slots[i].texture;
    const full = Math.floor(texels / FLAT_TEXTURE_WIDTH), rest = texels % FLAT_TEXTURE_WIDTH;
    if (full > 0) {
      encoder.copyBufferToTexture({ buffer, bytesPerRow }, { texture }, [FLAT_TEXTURE_WIDTH, full]);
    }
    if (rest > 0) {
      encoder.copyBufferToTexture(
        { buffer, offset: full * bytesPerRow, bytesPerRow },
        { texture, origin: [0, full] },
        [rest, 1],
      );
    }
  });
  const entries: GPUBindGroupEntry[] = [
    ...slots.map((s, i) => ({ binding: i, resource: s.view })),
    ...d.buffers.map((buffer, i) => ({ binding: slots.length + i, resource: { buffer } })),
    { binding: slots.length + d.buffers.length, resource: { buffer: params } },
  ];
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    rt.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }),
  );
  const [x, y = 1, z = 1] = d.workgroups;
  if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
  pass.end();
  rt.device.queue.submit([encoder.finish()]);
}
