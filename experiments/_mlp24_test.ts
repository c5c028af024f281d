import { makeTask, Mlp, pieceGradient, threshold, top2Mask } from "./_mlp24.ts";
import { softThreshold24 } from "../reference/soft_threshold.ts";
import { prune24 } from "../reference/prune.ts";
import { assert, assertClose, gaussianMatrix } from "../reference/testing.ts";

const SIZES = {
  inputs: 8,
  hidden: 8,
  classes: 4,
  teacherHidden: 8,
  trainSize: 64,
  testSize: 32,
};

Deno.test("threshold with the weight's own mask is the reference's hard and soft pruning", () => {
  const w = gaussianMatrix(6, 16, 3);
  const w64 = Float64Array.from(w.data);
  const mask = top2Mask(w64, 16);
  assertClose(
    threshold(w64, mask, "hard"),
    prune24(w).pruned.data,
    { atol: 0, rtol: 0 },
    "hard threshold",
  );
  assertClose(threshold(w64, mask, "soft"), softThreshold24(w).pruned.data, {
    atol: 1e-7,
    rtol: 1e-6,
  }, "soft threshold");
  const scaled = threshold(w64, mask, "soft", 1.5);
  assertClose(scaled, softThreshold24(w).pruned.data.map((v) => 1.5 * v), {
    atol: 1e-6,
    rtol: 1e-6,
  }, "β·soft threshold");
});

Deno.test("pieceGradient is the finite-difference gradient of the pruning function on its piece", () => {
  // L(w) = ⟨c, S_M(w)⟩ for a fixed mask M: its gradient is pieceGradient(w, M, kind, β, c).
  const w = Float64Array.from(gaussianMatrix(4, 8, 5).data);
  const c = Float64Array.from(gaussianMatrix(4, 8, 6).data);
  const mask = top2Mask(w, 8);
  for (const kind of ["hard", "soft"] as const) {
    const beta = kind === "soft" ? 1.4 : 1;
    const loss = (v: Float64Array) =>
      threshold(v, mask, kind, beta).reduce((a, s, i) => a + s * c[i], 0);
    const g = pieceGradient(w, mask, kind, beta, c);
    const h = 1e-6;
    const fd = w.map((_, i) => {
      const up = w.slice(), down = w.slice();
      up[i] += h;
      down[i] -= h;
      return (loss(up) - loss(down)) / (2 * h);
    });
    assertClose(g, fd, { atol: 1e-6, rtol: 1e-6 }, `${kind} gradient`);
  }
});

Deno.test("Mlp: the frozen-mask change equals the actual change when no mask flips; soft is continuous", () => {
  const task = makeTask(SIZES, 1);
  for (const kind of ["hard", "soft"] as const) {
    const model = new Mlp(SIZES, { kind, beta: "mse-frozen", seed: 1 });
    let flipped = 0, unflipped = 0;
    for (let s = 0; s < 40; s++) {
      const r = model.trainStep(task.train, { lr: 1e-2, batchSize: 16, seed: 1 });
      if (r.flipRate === 0) {
        assert(r.actual === r.frozen, `${kind} step ${s}: ${r.actual} vs ${r.frozen}`);
        unflipped++;
      } else flipped++;
    }
    assert(
      flipped > 0 && unflipped > 0,
      `${kind}: ${flipped} steps with flips, ${unflipped} without`,
    );
  }
  // Hard thresholding jumps when a mask flips; soft thresholding's outputs agree at the switch.
  const w = new Float64Array([1, -0.5, 0.5, 0.2]);
  const a = top2Mask(w, 4), b = new Uint8Array([1, 1, 0, 0]);
  const diff = (kind: "hard" | "soft") =>
    threshold(w, a, kind).reduce(
      (m, v, i) => Math.max(m, Math.abs(v - threshold(w, b, kind)[i])),
      0,
    );
  assert(diff("soft") === 0 && diff("hard") === 0.5, `soft ${diff("soft")}, hard ${diff("hard")}`);
});
