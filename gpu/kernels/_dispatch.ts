/**
 * Recording a kernel that writes new buffers: the allocate-bind-dispatch step most `encode*`
 * functions of the kernel families share. Private to `gpu/kernels/`.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid } from "./_params.ts";

/**
 * Records one dispatch of `spec` over `items` work items that writes new pooled buffers: they are
 * bound after `inputs`, in order, and returned. With no items the buffers are still allocated (the
 * caller owns and frees them as usual) and nothing is dispatched.
 *
 * @param rt The runtime.
 * @param spec The kernel.
 * @param inputs The buffers bound first.
 * @param outBytes The size of each new buffer, in bytes.
 * @param items Number of work items (0: no dispatch).
 * @param params The uniform block.
 * @param workgroups The grid (default {@linkcode grid}`(items)`).
 * @returns The new buffers.
 */
export function dispatchNew(
  rt: GpuRuntime,
  spec: KernelSpec,
  inputs: readonly GPUBuffer[],
  outBytes: readonly number[],
  items: number,
  params: Uint32Array,
  workgroups: readonly number[] = grid(items),
): GPUBuffer[] {
  const outs = outBytes.map((bytes) => rt.alloc(bytes));
  if (items > 0) rt.dispatch(spec, [...inputs, ...outs], workgroups, params);
  return outs;
}
