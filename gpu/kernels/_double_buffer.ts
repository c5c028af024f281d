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

/**
 * WGSL of the loop over K slices `[kBegin, kEnd)` of `step` each: `load` fills registers from
 * slice `k0`, `store` writes them to the `storeBase` halves, `inner` computes on the
 * `computeBase` halves. Declares `k0`.
 */
export function doubleBufferedLoop(options: {
  arrays: readonly StagedArray[];
  load: readonly string[];
  store: readonly string[];
  inner: readonly string[];
  kBegin: string;
  kEnd: string;
  step: number;
}): string {
  const { arrays, load, store, inner, kBegin, kEnd, step } = options;
  const bases = (which: "storeBase" | "computeBase", at: string) =>
    arrays.map((a) => `let ${a[which]} = ${at === "0" ? "0u" : `${at} * ${a.size}u`};`);
  return `var k0 = ${kBegin};
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
