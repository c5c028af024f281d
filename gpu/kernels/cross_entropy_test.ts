/**
 * The cross-entropy gradient from the forward pass's saved row log-sum-exps (one thread per logit)
 * against the row kernels that recompute them: bit for bit, on shapes with one row, one class,
 * class counts that are (texture kernels on a software adapter) and are not multiples of 4, a
 * dominant logit; and the saved values are not used for other logits or after they change.
 * Against the reference: `tests/gpu_backend_test.ts`.
 *
 * @module
 */

import { createGpuBackend } from "../backend.ts";
import { seededFloats } from "../../reference/testing.ts";
import { assertEqualArrays } from "../../reference/testing.ts";

const be = await createGpuBackend(); // rejects (fails every test) without an adapter
const keys: string[] = []; // the kernels dispatched, to see which path ran
const dispatch = be.runtime.dispatch.bind(be.runtime);
be.runtime.dispatch = (spec, ...rest) => {
  keys.push(spec.key);
  dispatch(spec, ...rest);
};
const SAVED = "cross-entropy-backward-saved";

Deno.test("crossEntropyBackward from the saved log-sum-exp equals the recomputing kernels", async () => {
  for (const [rows, C] of [[1, 1], [5, 7], [70, 512], [3, 1000], [33, 130]]) {
    const logits = seededFloats(rows * C, 9 + C, (u) => (u - 0.5) * 12);
    logits[0] = 60; // a dominant logit: large max subtraction
    const targets = be.indices(new Int32Array(rows).map((_, r) => (r * 37 + 3) % C), [rows]);
    const dLoss = be.tensor(new Float32Array([1.75]), [1]);
    const fresh = () => be.tensor(logits, [rows, C]);
    const recomputed = be.crossEntropyBackward(fresh(), targets, dLoss); // no forward: row kernels
    const z = fresh();
    be.crossEntropy(z, targets);
    keys.length = 0;
    const saved = be.crossEntropyBackward(z, targets, dLoss);
    if (keys.join() !== SAVED) throw new Error(`${rows}×${C}: dispatched ${keys}, not ${SAVED}`);
    const [a, b] = await be.readMany([saved, recomputed]);
    assertEqualArrays(
      new Uint32Array(a.buffer),
      new Uint32Array(b.buffer),
      `${rows}×${C}: saved vs recomputed log-sum-exp (bits)`,
    );
    // New values in the logits: the saved log-sum-exp must not be used.
    be.assign(z, be.scale(z, 0.5));
    keys.length = 0;
    const afterAssign = be.crossEntropyBackward(z, targets, dLoss);
    if (keys.includes(SAVED)) throw new Error(`${rows}×${C}: used a stale log-sum-exp`);
    const [after, want] = await be.readMany([
      afterAssign,
      be.crossEntropyBackward(be.scale(fresh(), 0.5), targets, dLoss),
    ]);
    assertEqualArrays(after, want, `${rows}×${C}: after assign`);
    be.release();
  }
});

globalThis.addEventListener("unload", () => be.runtime.destroy());
