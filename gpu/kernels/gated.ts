/**
 * Gated activations on the GPU (SPEC §3): GEGLU and SwiGLU forward and backward, the device twins
 * of `reference/gated.ts`, in the `"row-major"` layout (`[T, 2h]` rows `[x | gate]`) and the
 * `"column-major"` one a sparse GEMM computing `Zᵀ = W̃·Xᵀ` produces (input `[2h, T]`, output and
 * `dy` `[h, T]`; both halves contiguous, coalesced streams). Float32 with `σ`-based GELU and SiLU
 * (the formulas and their overflow rules: SPEC §3); device inputs are not checked for NaN or ±Inf.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { wgslItemMain } from "./_wgsl.ts";
import { assertBuffer, assertSizes, cachedSpec, f32Exact } from "./_sparse.ts";

/** The two gated activations of SPEC §3. */
export type GatedActivation = "geglu" | "swiglu";

/** Storage layout of the tensors of a gated activation (see the module documentation). */
export type GatedLayout = "row-major" | "column-major";

/** Options of {@linkcode gatedKernel}. */
export interface GatedKernelOptions {
  /** `"geglu"` or `"swiglu"`. */
  activation: GatedActivation;
  /** `"forward"` or `"backward"`. */
  pass: "forward" | "backward";
  /** `"row-major"` or `"column-major"`. */
  layout: GatedLayout;
}

const ACTIVATIONS_WGSL = `
fn sigmoid(z: f32) -> f32 { return 1.0 / (1.0 + exp(-z)); }

fn gelu_u(g: f32) -> f32 {
  return ${f32Exact(Math.sqrt(2 / Math.PI))} * (g + ${f32Exact(0.044715)} * g * g * g);
}

fn act_geglu(g: f32) -> f32 { return g * sigmoid(2.0 * gelu_u(g)); }

fn act_geglu_derivative(g: f32) -> f32 {
  let u = gelu_u(g);
  let s = sigmoid(2.0 * u);
  let s1 = s * sigmoid(-2.0 * u);
  let du = ${f32Exact(Math.sqrt(2 / Math.PI))} * (1.0 + ${f32Exact(3 * 0.044715)} * g * g);
  return s + select(2.0 * g * s1 * du, 0.0, s1 == 0.0);
}

fn act_swiglu(g: f32) -> f32 { return g * sigmoid(g); }

fn act_swiglu_derivative(g: f32) -> f32 { return sigmoid(g) * (1.0 + g * sigmoid(-g)); }
`;

function assertOptions(o: GatedKernelOptions, action: string): void {
  if (o === null || typeof o !== "object") {
    throw new TypeError(`Cannot ${action}: options must be an object, got ${o}`);
  }
  if (o.activation !== "geglu" && o.activation !== "swiglu") {
    throw new TypeError(
      `Cannot ${action}: activation must be "geglu" or "swiglu", got ${o.activation}`,
    );
  }
  if (o.pass !== "forward" && o.pass !== "backward") {
    throw new TypeError(`Cannot ${action}: pass must be "forward" or "backward", got ${o.pass}`);
  }
  assertLayout(o.layout, action);
}

function assertLayout(layout: unknown, action: string): void {
  if (layout !== "row-major" && layout !== "column-major") {
    throw new TypeError(
      `Cannot ${action}: layout must be "row-major" or "column-major", got ${layout}`,
    );
  }
}

/**
 * The kernel of one gated activation, pass and layout. One thread per output element (forward) or
 * per `dy` element (backward). Bindings: forward `x`, `out`; backward `x`, `dy`, `dx`; then the
 * uniform `{ tokens, hidden }`.
 *
 * @param options Activation, pass and layout.
 * @returns The kernel, key `gated-{activation}-{pass}-{row|col}`.
 * @throws {TypeError} If an option is unknown.
 * @example
 * ```ts
 * import { gatedKernel } from "./gated.ts";
 * const spec = gatedKernel({ activation: "geglu", pass: "forward", layout: "column-major" });
 * if (spec.key !== "gated-geglu-forward-col") throw new Error("unexpected");
 * ```
 */
export function gatedKernel(options: GatedKernelOptions): KernelSpec {
  assertOptions(options, "build the gated activation kernel");
  const { activation, pass, layout } = options;
  const col = layout === "column-major";
  const key = `gated-${activation}-${pass}-${col ? "col" : "row"}`;
  return cachedSpec(key, () => {
    // i runs over the [T, h] output (row-major: i = t·h + j; column-major: i = j·T + t).
    const at = col
      ? "  let xi = i;\n  let gi = p.hidden * p.tokens + i;"
      : "  let t = i / p.hidden;\n  let xi = i + t * p.hidden;\n  let gi = xi + p.hidden;";
    const bindings = pass === "forward"
      ? `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;`
      : `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;`;
    const body = pass === "forward"
      ? `  out[i] = x[xi] * act_${activation}(x[gi]);`
      : `  let gate = x[gi];
  let d = dy[i];
  dx[xi] = d * act_${activation}(gate);
  dx[gi] = d * x[xi] * act_${activation}_derivative(gate);`;
    return `// ${activation} ${pass}, ${layout} (SPEC 3): one thread per element of the [T, h] output.
struct Params { tokens: u32, hidden: u32 }
${bindings}
${ACTIVATIONS_WGSL}
${wgslItemMain("i", "p.tokens * p.hidden")}
${at}
${body}
}
`;
  });
}

/** Options of the gated-activation encoders. */
export interface GatedEncodeOptions {
  /** Storage layout of every tensor of the call (default `"row-major"`). */
  layout?: GatedLayout;
}

/** Records a gated activation's forward pass (see {@linkcode encodeGeglu}). */
export type GatedForwardEncoder = (
  rt: GpuRuntime,
  input: GPUBuffer,
  tokens: number,
  hidden: number,
  options?: GatedEncodeOptions,
) => GPUBuffer;

/** Records a gated activation's backward pass (see {@linkcode encodeGegluBackward}). */
export type GatedBackwardEncoder = (
  rt: GpuRuntime,
  input: GPUBuffer,
  dy: GPUBuffer,
  tokens: number,
  hidden: number,
  options?: GatedEncodeOptions,
) => GPUBuffer;

// One encoder per activation and pass: the four public encoders differ only in these two choices.
function forwardEncoder(activation: GatedActivation): GatedForwardEncoder {
  return (rt, input, tokens, hidden, options = {}) =>
    encodeGated(rt, activation, input, null, tokens, hidden, options);
}

function backwardEncoder(activation: GatedActivation): GatedBackwardEncoder {
  return (rt, input, dy, tokens, hidden, options = {}) =>
    encodeGated(rt, activation, input, dy, tokens, hidden, options);
}

function encodeGated(
  rt: GpuRuntime,
  activation: GatedActivation,
  x: GPUBuffer,
  dy: GPUBuffer | null,
  tokens: number,
  hidden: number,
  options: GatedEncodeOptions,
): GPUBuffer {
  const pass = dy ? "backward" : "forward";
  const action = `${pass === "forward" ? "apply" : "differentiate"} ${
    activation === "geglu" ? "GEGLU" : "SwiGLU"
  } on the GPU`;
  const layout = options?.layout ?? "row-major";
  assertLayout(layout, action);
  assertSizes({ tokens, hidden, "2·tokens·hidden": 2 * tokens * hidden }, action);
  const size = tokens * hidden;
  assertBuffer(x, 8 * size, "x", action);
  if (dy) assertBuffer(dy, 4 * size, "dy", action);
  const out = rt.alloc(dy ? 8 * size : 4 * size);
  if (size > 0) {
    const spec = gatedKernel({ activation, pass, layout });
    const buffers = dy ? [x, dy, out] : [x, out];
    rt.dispatch(spec, buffers, grid(size), packParams([tokens, hidden]));
  }
  return out;
}

/**
 * Records GEGLU forward (SPEC §3): `out = x ⊙ GELU_tanh(gate)` for an input `[T, 2h]` of rows
 * `[x | gate]` (or its transpose, see the module documentation). `input` is not modified.
 *
 * @param rt The runtime.
 * @param input The input, `2·tokens·hidden` float32 values.
 * @param tokens `T`, the number of rows of the logical input.
 * @param hidden `h`, the width of each half (and of the output).
 * @param options `layout`: `"row-major"` (default) or `"column-major"`.
 * @returns A new pooled buffer, the `[T, h]` output (`[h, T]` when column-major).
 * @throws {RangeError} If a size is invalid or `input` is too small.
 * @throws {TypeError} If the layout is unknown.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeGeglu } from "./gated.ts";
 * const rt = await GpuRuntime.create();
 * const out = encodeGeglu(rt, rt.upload(new Float32Array([0.5, -1, 2, 0, 1, -2])), 1, 3);
 * const v = new Float32Array(await rt.read(out, 12));
 * rt.destroy();
 * if (Math.abs(v[1] + 0.841192) > 1e-5) throw new Error("unexpected"); // SPEC §9
 * ```
 */
export const encodeGeglu: GatedForwardEncoder = forwardEncoder("geglu");

/**
 * Records GEGLU backward (SPEC §3): `[∂x | ∂gate]` with `∂x = dy ⊙ GELU_tanh(gate)` and
 * `∂gate = dy ⊙ x ⊙ GELU_tanh'(gate)`. Inputs are not modified.
 *
 * @param rt The runtime.
 * @param input The forward input, `2·tokens·hidden` float32 values.
 * @param dy The output gradient, `tokens·hidden` values, in the same layout.
 * @param tokens `T`.
 * @param hidden `h`.
 * @param options `layout`: `"row-major"` (default) or `"column-major"`.
 * @returns A new pooled buffer, the input gradient `[T, 2h]` (`[2h, T]` when column-major).
 * @throws {RangeError} If a size is invalid or a buffer is too small.
 * @throws {TypeError} If the layout is unknown.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeGegluBackward } from "./gated.ts";
 * const rt = await GpuRuntime.create();
 * const x = rt.upload(new Float32Array([0.5, -1, 2, 0, 1, -2]));
 * const dx = encodeGegluBackward(rt, x, rt.upload(new Float32Array([1, 1, 1])), 1, 3);
 * const v = new Float32Array(await rt.read(dx, 24));
 * rt.destroy();
 * if (Math.abs(v[3] - 0.25) > 1e-6) throw new Error("unexpected"); // SPEC §9: ∂gate[0] = 0.25
 * ```
 */
export const encodeGegluBackward: GatedBackwardEncoder = backwardEncoder("geglu");

/**
 * Records SwiGLU forward (SPEC §3): `out = x ⊙ SiLU(gate)`, layouts as {@linkcode encodeGeglu}.
 *
 * @param rt The runtime.
 * @param input The input, `2·tokens·hidden` float32 values.
 * @param tokens `T`.
 * @param hidden `h`.
 * @param options `layout`: `"row-major"` (default) or `"column-major"`.
 * @returns A new pooled buffer, the `[T, h]` output (`[h, T]` when column-major).
 * @throws {RangeError} If a size is invalid or `input` is too small.
 * @throws {TypeError} If the layout is unknown.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeSwiglu } from "./gated.ts";
 * const rt = await GpuRuntime.create();
 * const v = new Float32Array(await rt.read(encodeSwiglu(rt, rt.upload(new Float32Array([3, 0])), 1, 1), 4));
 * rt.destroy();
 * if (v[0] !== 0) throw new Error("SiLU(0) = 0");
 * ```
 */
export const encodeSwiglu: GatedForwardEncoder = forwardEncoder("swiglu");

/**
 * Records SwiGLU backward (SPEC §3): `[∂x | ∂gate]` with `∂x = dy ⊙ SiLU(gate)` and
 * `∂gate = dy ⊙ x ⊙ SiLU'(gate)`, layouts as {@linkcode encodeGegluBackward}.
 *
 * @param rt The runtime.
 * @param input The forward input, `2·tokens·hidden` float32 values.
 * @param dy The output gradient, `tokens·hidden` values, in the same layout.
 * @param tokens `T`.
 * @param hidden `h`.
 * @param options `layout`: `"row-major"` (default) or `"column-major"`.
 * @returns A new pooled buffer, the input gradient `[T, 2h]` (`[2h, T]` when column-major).
 * @throws {RangeError} If a size is invalid or a buffer is too small.
 * @throws {TypeError} If the layout is unknown.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeSwigluBackward } from "./gated.ts";
 * const rt = await GpuRuntime.create();
 * const x = rt.upload(new Float32Array([3, 0]));
 * const v = new Float32Array(await rt.read(encodeSwigluBackward(rt, x, rt.upload(new Float32Array([2])), 1, 1), 8));
 * rt.destroy();
 * if (v[1] !== 3) throw new Error("unexpected"); // SiLU'(0) = ½: ∂gate = 2·3·½
 * ```
 */
export const encodeSwigluBackward: GatedBackwardEncoder = backwardEncoder("swiglu");
