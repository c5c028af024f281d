import { ReferenceBackend } from "./reference_backend.ts";
import { Parameter } from "./nn.ts";
import { AdamW, clipFactor, gradNormSquared } from "./optim.ts";
import { assertClose } from "./grad_check.ts";
import { assertThrows } from "../reference/testing.ts";

Deno.test("AdamW: three steps match the bias-corrected formula; decay only where flagged", async () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const w0 = [0.5, -1.5, 2], n0 = [1, 0.2, -0.3];
  const decayed = new Parameter(be, "w", new Float32Array(w0), [3], { weightDecay: true });
  const norm = new Parameter(be, "ln.weight", new Float32Array(n0), [3]);
  const adam = new AdamW(be, [decayed, norm]);
  const { beta1, beta2, eps, weightDecay } = adam.config;
  if (beta1 !== 0.9 || beta2 !== 0.95 || eps !== 1e-8 || weightDecay !== 0.1) {
    throw new Error(`defaults ${JSON.stringify(adam.config)}`);
  }
  const grads = [[0.1, -0.2, 0.3], [-1, 2, 0.5], [0.05, 0, -0.4]];
  const lrs = [0.1, 0.05, 0.02];
  const host = (w: number[], decay: number) => {
    const m = [0, 0, 0], v = [0, 0, 0], p = w.map(Math.fround); // the stored f32 values
    grads.forEach((g, t) => {
      for (let i = 0; i < 3; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        const mh = m[i] / (1 - beta1 ** (t + 1)), vh = v[i] / (1 - beta2 ** (t + 1));
        p[i] -= lrs[t] * (mh / (Math.sqrt(vh) + eps) + decay * p[i]);
      }
    });
    return p;
  };
  grads.forEach((g, t) => {
    const gt = be.tensor(new Float64Array(g), [3]);
    adam.update([[decayed, gt], [norm, gt]], lrs[t], t + 1);
  });
  const tol = { atol: 1e-12, rtol: 1e-12 };
  assertClose(be.readF64(decayed.value), host(w0, 0.1), tol, "decayed parameter");
  assertClose(be.readF64(norm.value), host(n0, 0), tol, "undecayed parameter");
  assertClose(await be.read(adam.moments("w").m), await be.read(adam.moments("ln.weight").m), {
    atol: 0,
    rtol: 0,
  }, "moments depend on the gradient only");
});

Deno.test("AdamW: invalid configurations and steps are RangeErrors", () => {
  const be = new ReferenceBackend();
  const p = new Parameter(be, "w", new Float32Array([1]), [1]);
  const cases: [() => unknown, string][] = [
    [() => new AdamW(be, [p, p]), "name w is repeated"],
    [() => new AdamW(be, [p], { beta1: 1 }), "beta1 must be in [0, 1), got 1"],
    [() => new AdamW(be, [p], { eps: 0 }), "eps must be a positive finite number"],
    [() => new AdamW(be, [p], { weightDecay: -0.1 }), "weightDecay must be finite and >= 0"],
    [
      () => new AdamW(be, [p]).update([[p, be.full([1], 1)]], 0.1, 0),
      "step must be a positive integer, got 0",
    ],
    [() => new AdamW(be, [p]).update([[p, be.full([1], 1)]], NaN, 1), "lr must be finite"],
    [() => new AdamW(be, []).moments("w"), "Cannot find the AdamW moments of w"],
  ];
  for (const [fn, message] of cases) assertThrows(fn, RangeError, message);
});

Deno.test("gradNormSquared and clipFactor: global-norm clipping as PyTorch's clip_grad_norm_", async () => {
  const be = new ReferenceBackend();
  const a = be.tensor(new Float32Array([3, 0]), [2]), b = be.tensor(new Float32Array([4]), [1]);
  const [sq] = await be.read(gradNormSquared(be, [a, b]));
  if (sq !== 25) throw new Error(`Σ‖g‖² = ${sq}`);
  if (clipFactor(5, 10) !== 1 || clipFactor(0, 1) !== 1) throw new Error("no clipping below");
  // As in PyTorch, the 1e-6 makes a norm exactly at the threshold clip very slightly.
  assertClose([clipFactor(1, 1)], [1 / (1 + 1e-6)], { atol: 0, rtol: 1e-15 }, "at the threshold");
  assertClose([clipFactor(5, 1)], [1 / (5 + 1e-6)], { atol: 0, rtol: 1e-15 }, "clip factor");
  const bad: [() => unknown, string][] = [
    [() => gradNormSquared(be, []), "there are no gradients"],
    [() => clipFactor(NaN, 1), "the norm must be >= 0, got NaN"],
    [() => clipFactor(1, 0), "maxNorm must be positive, got 0"],
  ];
  for (const [fn, message] of bad) assertThrows(fn, RangeError, message);
});

Deno.test("AdamW: a frozen variance (STEP) keeps v and bias-corrects it with its freezing step", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const p = new Parameter(be, "w", new Float32Array([0.5, -1]), [2], { weightDecay: true });
  const q = new Parameter(be, "b", new Float32Array([0.25]), [1]);
  const adam = new AdamW(be, [p, q]);
  const { beta1, beta2, eps, weightDecay } = adam.config;
  const grads = [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.05]];
  // The host formula: v moves for two steps, then stays; v̂ uses 1 − β2² from then on.
  const w = [0.5, -1], m = [0, 0], v = [0, 0];
  for (let t = 1; t <= 3; t++) {
    if (t === 3) adam.freezeVariance(["w"], 2);
    const g = grads[t - 1];
    adam.update(
      [
        [p, be.tensor(new Float64Array(g), [2])],
        [q, be.tensor(new Float64Array([g[0]]), [1])],
      ],
      0.1,
      t,
    );
    const c1 = 1 - beta1 ** t, c2 = 1 - beta2 ** Math.min(t, 2);
    for (let i = 0; i < 2; i++) {
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      if (t <= 2) v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      w[i] -= 0.1 * ((m[i] / c1) / (Math.sqrt(v[i] / c2) + eps) + weightDecay * w[i]);
    }
  }
  assertClose(be.readF64(p.value), w, { atol: 0, rtol: 1e-12 }, "frozen-variance weights");
  assertClose(be.readF64(adam.moments("w").v), v, { atol: 0, rtol: 0 }, "frozen v");
  if (adam.varianceFrozenAt("w") !== 2 || adam.varianceFrozenAt("b") !== undefined) {
    throw new Error("only w is frozen, at step 2");
  }
  adam.freezeVariance(["w"], 3); // the first freeze stays
  if (adam.varianceFrozenAt("w") !== 2) throw new Error("a second freeze moved the step");
  assertThrows(
    () => adam.freezeVariance(["w"], 0),
    RangeError,
    "atStep must be a positive integer, got 0",
  );
  assertThrows(
    () => adam.freezeVariance(["nope"], 1),
    RangeError,
    "Cannot find the AdamW moments of nope",
  );
  const moments = adam.moments("b");
  const hp = { lr: 0.1, beta1, beta2, eps, weightDecay: 0, step: 2, varianceFrozenAt: 3 };
  assertThrows(
    () => be.adamw(q.value, q.value, moments.m, moments.v, hp),
    RangeError,
    "varianceFrozenAt must be an integer in [1, step = 2], got 3",
  );
});
