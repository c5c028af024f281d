/**
 * Gradient checks of every differentiable op: the tape's gradients against central finite
 * differences on the reference backend's float64 storage (`L = Σ y ⊙ r` for a fixed random `r`).
 * Tolerance: with eps = 1e-6 in float64 the FD error is ~1e-9 for values of order one, so
 * `atol 1e-7, rtol 1e-6` leaves two orders of margin and still catches any wrong term.
 * GEGLU/SwiGLU run on float32 oracles even in f64 mode, so they are checked against SPEC §9 hand
 * values and the closed-form derivative instead.
 */

import { ReferenceBackend } from "./reference_backend.ts";
import { Tape, Variable } from "./autograd.ts";
import * as ops from "./ops.ts";
import { assertClose, finiteDifference } from "./grad_check.ts";
import { leaf, projectionLoss, randn, withoutFusedAttention } from "./train_testing.ts";

const TOL = { atol: 1e-7, rtol: 1e-6 };

interface Input {
  shape: number[];
  data?: Float64Array;
}

/**
 * Builds `y = build(tape, inputs)` with random inputs, back-propagates `Σ y ⊙ r` and compares every
 * input's gradient with finite differences.
 */
function checkOp(
  label: string,
  inputs: Input[],
  build: (tape: Tape, xs: Variable[]) => Variable,
  options: { scalar?: boolean; composedAttention?: boolean } = {},
): void {
  const f64 = new ReferenceBackend({ precision: "f64" });
  const be = options.composedAttention ? withoutFusedAttention(f64) : f64;
  const values = inputs.map((inp, i) =>
    inp.data ?? randn(100 + i, inp.shape.reduce((a, b) => a * b, 1))
  );
  const evaluate = (tape: Tape, xs: Variable[]) => {
    const y = build(tape, xs);
    if (options.scalar) return y;
    const r = be.tensor(randn(999, y.value.size), y.value.shape);
    return projectionLoss(tape, y, r);
  };
  const tape = new Tape(be);
  const xs = values.map((v, i) => leaf(be, v, inputs[i].shape));
  tape.backward(evaluate(tape, xs));
  xs.forEach((x, i) => {
    if (x.grad === undefined) throw new Error(`${label}: input ${i} received no gradient`);
    const analytic = be.readF64(x.grad);
    const numeric = finiteDifference((v) => {
      const t = new Tape(be, { recording: false });
      const vars = values.map((w, j) => new Variable(be.tensor(j === i ? v : w, inputs[j].shape)));
      return be.readF64(evaluate(t, vars).value)[0];
    }, Float64Array.from(values[i]));
    assertClose(analytic, numeric, TOL, `${label}: ∂L/∂input${i}`);
  });
}

Deno.test("matmul: gradients of 2-D products with every transpose combination", () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = transA ? [4, 3] : [3, 4], b = transB ? [5, 4] : [4, 5];
      checkOp(
        `matmul transA=${transA} transB=${transB}`,
        [{ shape: a }, { shape: b }],
        (t, [x, y]) => ops.matmul(t, x, y, { transA, transB }),
      );
    }
  }
});

Deno.test("matmul: gradients of batched products with every transpose combination", () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = transA ? [2, 4, 3] : [2, 3, 4], b = transB ? [2, 5, 4] : [2, 4, 5];
      checkOp(
        `batched matmul transA=${transA} transB=${transB}`,
        [{ shape: a }, { shape: b }],
        (t, [x, y]) => ops.matmul(t, x, y, { transA, transB }),
      );
    }
  }
});

Deno.test("linear, add, mul, scale, reshape: gradients", () => {
  checkOp("linear", [{ shape: [3, 4] }, { shape: [5, 4] }], (t, [x, w]) => ops.linear(t, x, w));
  checkOp("add", [{ shape: [2, 3] }, { shape: [2, 3] }], (t, [a, b]) => ops.add(t, a, b));
  checkOp("mul", [{ shape: [2, 3] }, { shape: [2, 3] }], (t, [a, b]) => ops.mul(t, a, b));
  // The same variable used twice: the two contributions must be summed.
  checkOp("mul(x, x)", [{ shape: [2, 3] }], (t, [a]) => ops.mul(t, a, a));
  checkOp("scale", [{ shape: [2, 3] }], (t, [a]) => ops.scale(t, a, -2.5));
  checkOp("reshape", [{ shape: [2, 6] }], (t, [a]) => ops.reshape(t, a, [3, 4]));
});

Deno.test("sliceCols and permute0213: gradients", () => {
  checkOp("sliceCols", [{ shape: [3, 7] }], (t, [a]) => ops.sliceCols(t, a, 2, 3));
  checkOp("permute0213", [{ shape: [24, 5] }], (t, [a]) => ops.permute0213(t, a, [2, 3, 4, 5]));
});

Deno.test("splitHeads, mergeHeads and addLayerNorm: gradients", () => {
  const dims = { batch: 2, heads: 2, parts: 3 };
  // A weighted sum of the parts, so each part's gradient differs.
  checkOp("splitHeads", [{ shape: [6, 12] }], (t, [a]) => {
    const parts = ops.splitHeads(t, a, dims);
    return ops.add(t, ops.scale(t, parts[0], 2), ops.add(t, parts[1], ops.scale(t, parts[2], -3)));
  });
  checkOp(
    "mergeHeads",
    [{ shape: [4, 3, 2] }, { shape: [4, 3, 2] }],
    (t, [a, b]) => ops.mergeHeads(t, [a, b], 2),
  );
  const ln = [{ shape: [3, 8] }, { shape: [3, 8] }, { shape: [8] }, { shape: [8] }];
  // Both outputs in the loss (the sum's own gradient meets the LayerNorm's), then y alone.
  checkOp("addLayerNorm", ln, (t, [x, r, w, b]) => {
    const [sum, y] = ops.addLayerNorm(t, [x, r], w, b);
    return ops.add(t, ops.scale(t, sum, 0.5), y);
  });
  checkOp("addLayerNorm (y only)", ln, (t, [x, r, w, b]) => ops.addLayerNorm(t, [x, r], w, b)[1]);
});

Deno.test("embedding: gradient accumulates repeated indices", () => {
  checkOp("embedding", [{ shape: [5, 3] }], (t, [table]) => {
    const idx = t.backend.indices(new Int32Array([4, 1, 4, 0, 4, 2]), [6]);
    return ops.embedding(t, table, idx);
  });
});

Deno.test("layerNorm and gelu: gradients", () => {
  checkOp(
    "layerNorm",
    [{ shape: [3, 8] }, { shape: [8] }, { shape: [8] }],
    (t, [x, w, b]) => ops.layerNorm(t, x, w, b),
  );
  checkOp("gelu", [{ shape: [4, 5] }], (t, [x]) => ops.gelu(t, x));
});

Deno.test("dropout: gradient applies the same mask; p = 0 is the identity", () => {
  checkOp(
    "dropout",
    [{ shape: [4, 8] }],
    (t, [x]) => ops.dropout(t, x, { p: 0.25, seed: 3, stream: 9 }),
  );
  const be = new ReferenceBackend();
  const tape = new Tape(be);
  const x = new Variable(be.full([2, 2], 1), { requiresGrad: true });
  if (ops.dropout(tape, x, { p: 0, seed: 1, stream: 1 }) !== x) {
    throw new Error("dropout with p = 0 should return its input");
  }
  let threw = false;
  try {
    ops.dropout(tape, x, { p: 1, seed: 1, stream: 1 });
  } catch (e) {
    threw = e instanceof RangeError;
  }
  if (!threw) throw new Error("dropout with p = 1 should throw a RangeError");
});

Deno.test("causalSoftmax and causalSelfAttention: gradients", () => {
  checkOp("causalSoftmax", [{ shape: [2, 4, 4] }], (t, [s]) => ops.causalSoftmax(t, s, 0.7));
  // B = 2, T = 4, 2 heads of width 2 (d = 4): qkv is [8, 12].
  for (const composedAttention of [false, true]) { // the fused op (SPEC §8.5) and the composed path
    checkOp(
      `causalSelfAttention${composedAttention ? " (composed)" : " (fused)"}`,
      [{ shape: [8, 12] }],
      (t, [qkv]) => ops.causalSelfAttention(t, qkv, { batchSize: 2, seqLen: 4, nHead: 2 }),
      { composedAttention },
    );
  }
});

Deno.test("causalSelfAttention: the fused and composed paths agree in float64 (output, ∇qkv)", () => {
  const B = 2, T = 7, h = 3, hd = 5, d = h * hd;
  const qkvData = randn(41, B * T * 3 * d), dyData = randn(42, B * T * d);
  const run = (be: ReferenceBackend) => {
    const tape = new Tape(be);
    const qkv = leaf(be, qkvData, [B * T, 3 * d]);
    const y = ops.causalSelfAttention(tape, qkv, { batchSize: B, seqLen: T, nHead: h });
    tape.backward(projectionLoss(tape, y, be.tensor(dyData, [B * T, d])));
    return [be.readF64(y.value), be.readF64(qkv.grad!)];
  };
  const f64 = new ReferenceBackend({ precision: "f64" });
  const [fused, composed] = [run(f64), run(withoutFusedAttention(f64))];
  assertClose(fused[0], composed[0], { atol: 1e-13, rtol: 1e-12 }, "output");
  assertClose(fused[1], composed[1], { atol: 1e-13, rtol: 1e-12 }, "∇qkv");
});

/** Softmax of one row of scores, in float64 (the direct attention checks' reference). */
function softmax(scores: readonly number[]): number[] {
  const max = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - max));
  const z = e.reduce((a, c) => a + c, 0);
  return e.map((v) => v / z);
}

Deno.test("causalSelfAttention: matches a direct per-head computation", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const B = 2, T = 3, h = 2, hd = 2, d = h * hd;
  const data = randn(5, B * T * 3 * d);
  const tape = new Tape(be, { recording: false });
  const y = be.readF64(
    ops.causalSelfAttention(tape, new Variable(be.tensor(data, [B * T, 3 * d])), {
      batchSize: B,
      seqLen: T,
      nHead: h,
    }).value,
  );
  const expected = new Float64Array(B * T * d);
  const at = (b: number, t: number, part: number, head: number, k: number) =>
    data[(b * T + t) * 3 * d + part * d + head * hd + k];
  for (let b = 0; b < B; b++) {
    for (let head = 0; head < h; head++) {
      for (let i = 0; i < T; i++) {
        const scores = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let k = 0; k < hd; k++) s += at(b, i, 0, head, k) * at(b, j, 1, head, k);
          scores.push(s / Math.sqrt(hd));
        }
        const p = softmax(scores);
        for (let k = 0; k < hd; k++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc += p[j] * at(b, j, 2, head, k);
          expected[(b * T + i) * d + head * hd + k] = acc;
        }
      }
    }
  }
  assertClose(y, expected, { atol: 1e-12, rtol: 1e-12 }, "attention output");
});

Deno.test("causalSelfAttention: rejects a qkv shape that does not match", () => {
  const be = new ReferenceBackend();
  const tape = new Tape(be);
  const qkv = new Variable(be.full([8, 10], 0));
  let threw = false;
  try {
    ops.causalSelfAttention(tape, qkv, { batchSize: 2, seqLen: 4, nHead: 2 });
  } catch (e) {
    threw = e instanceof RangeError && /qkv must be/.test(e.message);
  }
  if (!threw) throw new Error("expected a RangeError naming qkv");
});

Deno.test("crossEntropy and meanPool: gradients", () => {
  checkOp("crossEntropy", [{ shape: [5, 6] }], (t, [logits]) => {
    const targets = t.backend.indices(new Int32Array([0, 5, 2, 2, 3]), [5]);
    return ops.crossEntropy(t, logits, targets);
  }, { scalar: true });
  checkOp("meanPool", [{ shape: [6, 4] }], (t, [x]) => ops.meanPool(t, x, 2));
});

Deno.test("meanPool: averages the tokens of each sequence", async () => {
  const be = new ReferenceBackend();
  const tape = new Tape(be, { recording: false });
  const x = new Variable(be.tensor(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), [4, 2]));
  const y = await be.read(ops.meanPool(tape, x, 2).value);
  assertClose(y, [2, 3, 6, 7], { atol: 0, rtol: 0 }, "pooled");
});

Deno.test("geglu: SPEC §9 forward and backward values", async () => {
  const be = new ReferenceBackend();
  const tape = new Tape(be);
  const x = new Variable(be.tensor(new Float32Array([0.5, -1, 2, 0, 1, -2]), [1, 6]), {
    requiresGrad: true,
  });
  const y = ops.geglu(tape, x);
  const ones = be.full([1, 3], 1);
  tape.backward(projectionLoss(tape, y, ones));
  const tol = { atol: 1e-6, rtol: 0 };
  assertClose(await be.read(y.value), [0, -0.841192, -0.090804], tol, "geglu output");
  assertClose(
    await be.read(x.grad!),
    [0, 0.841192, -0.045402, 0.25, -1.082964, -0.172198],
    tol,
    "geglu gradient",
  );
});

Deno.test("swiglu: gradient equals the closed form [SiLU(g) | x·SiLU'(g)]", async () => {
  const be = new ReferenceBackend();
  const tape = new Tape(be);
  const values = [0.5, -1, 2, 0, 1, -2];
  const x = new Variable(be.tensor(new Float32Array(values), [1, 6]), { requiresGrad: true });
  const y = ops.swiglu(tape, x);
  tape.backward(projectionLoss(tape, y, be.full([1, 3], 1)));
  const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));
  const expectedY = [], expectedGrad = [];
  for (let k = 0; k < 3; k++) {
    const a = values[k], g = values[3 + k], s = sigmoid(g);
    expectedY.push(a * g * s);
  }
  for (let k = 0; k < 3; k++) expectedGrad.push(values[3 + k] * sigmoid(values[3 + k]));
  for (let k = 0; k < 3; k++) {
    const a = values[k], g = values[3 + k], s = sigmoid(g);
    expectedGrad.push(a * s * (1 + g * (1 - s)));
  }
  const tol = { atol: 1e-6, rtol: 1e-6 };
  assertClose(await be.read(y.value), expectedY, tol, "swiglu output");
  assertClose(await be.read(x.grad!), expectedGrad, tol, "swiglu gradient");
});

Deno.test("padCols: gradient is the slice back", () => {
  checkOp("padCols", [{ shape: [3, 4] }], (t, [a]) => ops.padCols(t, a, 2, 9));
});

/** Direct masked attention: per sequence and head, softmax over the valid keys only. */
function directAttention(
  q: Float64Array,
  kv: Float64Array,
  o: { B: number; Tq: number; Tk: number; h: number; hd: number; lengths: number[] },
): Float64Array {
  const { B, Tq, Tk, h, hd, lengths } = o;
  const d = h * hd;
  const out = new Float64Array(B * Tq * d);
  for (let b = 0; b < B; b++) {
    for (let head = 0; head < h; head++) {
      for (let i = 0; i < Tq; i++) {
        const scores: number[] = [];
        for (let j = 0; j < lengths[b]; j++) {
          let s = 0;
          for (let k = 0; k < hd; k++) {
            s += q[(b * Tq + i) * d + head * hd + k] * kv[(b * Tk + j) * 2 * d + head * hd + k];
          }
          scores.push(s / Math.sqrt(hd));
        }
        const p = softmax(scores);
        for (let k = 0; k < hd; k++) {
          let acc = 0;
          for (let j = 0; j < lengths[b]; j++) {
            acc += p[j] * kv[(b * Tk + j) * 2 * d + d + head * hd + k];
          }
          out[(b * Tq + i) * d + head * hd + k] = acc;
        }
      }
    }
  }
  return out;
}

Deno.test("attention: matches direct masked attention (Tq < Tk, Tq > Tk, one valid key)", () => {
  const be = new ReferenceBackend({ precision: "f64" });
  for (const [Tq, Tk, lengths] of [[2, 5, [5, 3]], [4, 3, [1, 2]]] as const) {
    const B = 2, h = 2, hd = 3, d = h * hd;
    const options = { batchSize: B, queryLen: Tq, keyLen: Tk, nHead: h };
    const q = randn(11, B * Tq * d), kv = randn(12, B * Tk * 2 * d);
    const tape = new Tape(be, { recording: false });
    const y = ops.attention(
      tape,
      new Variable(be.tensor(q, [B * Tq, d])),
      new Variable(be.tensor(kv, [B * Tk, 2 * d])),
      ops.attentionBias(be, options, lengths),
      options,
    );
    const expected = directAttention(q, kv, { B, Tq, Tk, h, hd, lengths: [...lengths] });
    assertClose(be.readF64(y.value), expected, { atol: 1e-12, rtol: 1e-12 }, `Tq ${Tq} Tk ${Tk}`);
  }
});

Deno.test("attention: gradients of queries and packed keys/values with a padded key", () => {
  const options = { batchSize: 2, queryLen: 3, keyLen: 4, nHead: 2 };
  checkOp(
    "attention",
    [{ shape: [6, 4] }, { shape: [8, 8] }],
    (t, [q, kv]) => ops.attention(t, q, kv, ops.attentionBias(t.backend, options, [4, 2]), options),
  );
});

Deno.test("attention: rejects mismatched shapes and key lengths", () => {
  const be = new ReferenceBackend();
  const options = { batchSize: 2, queryLen: 3, keyLen: 4, nHead: 2 };
  const tape = new Tape(be, { recording: false });
  const bias = ops.attentionBias(be, options, [4, 2]);
  const threw = (f: () => unknown, pattern: RegExp) => {
    try {
      f();
    } catch (e) {
      return e instanceof RangeError && pattern.test(e.message);
    }
    return false;
  };
  const q = new Variable(be.full([6, 4], 0)), kv = new Variable(be.full([8, 6], 0));
  if (!threw(() => ops.attention(tape, q, kv, bias, options), /Cannot compute attention/)) {
    throw new Error("expected a RangeError for kv of width 6");
  }
  if (!threw(() => ops.attentionBias(be, options, [4, 5]), /key length 1 .* got 5/)) {
    throw new Error("expected a RangeError for a key length above keyLen");
  }
  if (!threw(() => ops.attentionBias(be, options, [4]), /expected 2 key lengths/)) {
    throw new Error("expected a RangeError for a missing key length");
  }
});
