/**
 * Prints what twofour's WebGPU runtime sees: the adapter, the optional features it enabled and the
 * limits that matter for the kernels. Exits with status 1 and the typed error's message when no
 * adapter is available.
 *
 * Usage: `deno run --allow-env experiments/gpu_info.ts`
 *
 * @module
 */
import { describeAdapter, GpuRuntime, WebGpuUnavailableError } from "../gpu/runtime.ts";

try {
  const rt = await GpuRuntime.create();
  const l = rt.limits;
  console.log(`adapter: ${describeAdapter(rt.adapter)}`);
  console.log(`features: shader-f16=${rt.features.f16} timestamp-query=${rt.features.timestamp}`);
  console.log(
    `limits: maxStorageBufferBindingSize=${l.maxStorageBufferBindingSize} maxBufferSize=${l.maxBufferSize} ` +
      `maxComputeWorkgroupStorageSize=${l.maxComputeWorkgroupStorageSize} ` +
      `maxComputeInvocationsPerWorkgroup=${l.maxComputeInvocationsPerWorkgroup} ` +
      `maxStorageBuffersPerShaderStage=${l.maxStorageBuffersPerShaderStage} ` +
      `minStorageBufferOffsetAlignment=${l.minStorageBufferOffsetAlignment}`,
  );
  rt.destroy();
} catch (e) {
  if (e instanceof WebGpuUnavailableError) {
    console.error(e.message);
    Deno.exit(1);
  }
  throw e;
}
