/**
 * The K loop shared by the wide and the 2:4 switch matmuls (issue 15): slices staged through
 * registers into one half of each workgroup array while the workgroup computes on the other half,
 * one barrier per slice.
 *
 * @module
 */

/** One double-buffered workgroup array: the base-offset names the statements use, and its half size. */
export interface StagedArray {
  /** Name of the offset of the half being stored (used by `store`). */
  storeBase: string;
  /** Name of the offset of the half being read (used by `inner`). */
  computeBase: string;
  /** Elements per half. */
  size: number;
}

/** The statements and range of one {@linkcode doubleBufferedLoop}. */
export interface StagedLoop {
  /** The double-buffered workgroup arrays. */
  arrays: readonly StagedArray[];
  /** Declarations of the registers `load` fills (emitted before the loop). */
  registers: readonly string[];
  /** Fill the registers from slice `k0`. */
  load: readonly string[];
  /** Write the registers to the `storeBase` halves. */
  store: readonly string[];
  /** Compute on the `computeBase` halves. */
  inner: readonly string[];
  /** First k (WGSL; default `0u`). */
  kBegin?: string;
  /** End of the k range (WGSL; default `p.K`, the whole reduction). */
  kEnd?: string;
  /** K per slice. */
  step: number;
}

/**
 * WGSL of the register declarations and the loop over K slices `[kBegin, kEnd)` of `step` each:
 * `load` fills registers from slice `k0`, `store` writes them to the `storeBase` halves, `inner`
 * computes on the `computeBase` halves. Declares `k0`.
 */
export function doubleBufferedLoop(loop: StagedLoop): string {
  const { arrays, registers, load, store, inner, kBegin = "0u", kEnd = "p.K", step } = loop;
  const bases = (which: "storeBase" | "computeBase", at: string) =>
    arrays.map((a) => `let ${a[which]} = ${at === "0" ? "0u" : `${at} * ${a.size}u`};`);
  return `${registers.join("\n  ")}
  var k0 = ${kBegin};
  ${load.join("\n  ")}
  {
    ${bases("storeBase", "0").join("\n    ")}
    ${store.join("\n    ")}
  }
  workgroupBarrier();
  var buf = 0u;
  loop {
    ${bases("computeBase", "buf").join("\n    ")}
    let more = k0 + ${step}u < ${kEnd};
    if (more) {
      k0 += ${step}u;
      ${load.join("\n      ")}
    }
    ${inner.join("\n    ")}
    if (!more) { break; }
    buf = 1u - buf;
    {
      ${bases("storeBase", "buf").join("\n      ")}
      ${store.join("\n      ")}
    }
    workgroupBarrier();
  }`;
}
