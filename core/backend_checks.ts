/**
 * Input checks shared by the `Backend` implementations (`ReferenceBackend`, `GpuBackend`):
 * tensor ownership and lifetime, dtypes, and the shape and argument rules of every operation, with
 * one wording of every error. Each backend runs its own data-dependent checks (NaN, mask values)
 * where it can see the data. Shared by `core/` and `gpu/`; not exported from `mod.ts`.
 *
 * Over 600 lines: one checker method per `Backend` operation, so every backend words each error the
 * same way.
 *
 * @module
 */

import type {
  AdamWParams,
  AttentionSaved,
  Backend,
  DType,
  GradClip,
  HeadsDims,
  MatmulOptions,
  SoftmaxBackwardOptions,
  Tensor,
} from "./backend.ts";

/** How the shared checks see one backend's tensor class. */
export interface TensorKind<T extends Tensor & { readonly storage: object }> {
  /** The backend's class name, as error messages write it (`"ReferenceBackend"`). */
  readonly backend: string;
  /** Whether `t` is an instance of the backend's tensor class. */
  is(t: unknown): t is T;
  /** The backend instance that owns `t`. */
  owner(t: T): object;
  /** Whether `t`'s storage was freed. */
  released(t: T): boolean;
  /** The values of the `i32` tensor `t` on the host (throws if the host has none). */
  indices(t: T, action: string): Int32Array;
}

/** The checked operands of a matrix product and its sizes. */
export interface MatmulOperands<T extends Tensor> {
  A: T;
  B: T;
  transA: boolean;
  transB: boolean;
  /** 2, or 3 for a batched product. */
  rank: number;
  /** Batch size (1 for a 2-D product). */
  batch: number;
  /** Rows of the product. */
  M: number;
  /** Columns of the product. */
  N: number;
  /** Inner dimension. */
  K: number;
}

/** The checked operands of a cross-entropy and its sizes. */
export interface CrossEntropyOperands<T extends Tensor> {
  /** The logits `[N, C]`. */
  Z: T;
  /** The targets `[N]`. */
  T: T;
  /** The targets' values on the host. */
  t: Int32Array;
  /** Rows (N). */
  n: number;
  /** Classes (C). */
  c: number;
}

/** The block of `Backend.sliceCols` and `Backend.padCols`: `[rows, width]` at a column of `[rows, cols]`. */
export interface ColumnBlock<T extends Tensor> {
  /** The checked operand. */
  t: T;
  /** Rows of both sides. */
  rows: number;
  /** Columns of the wide side (the sliced input or the padded output). */
  cols: number;
  /** Columns of the block. */
  width: number;
}

/**
 * The input checks of one backend instance: ownership, lifetime and dtype of every tensor, then the
 * shape and argument rules of each operation. An operation's method takes the operation's raw
 * arguments and returns them checked, with the sizes the backend needs.
 */
export class TensorChecker<T extends Tensor & { readonly storage: object }> {
  #owner: object;
  #kind: TensorKind<T>;

  /**
   * @param owner The backend whose tensors pass.
   * @param kind How its tensors are recognised.
   */
  constructor(owner: object, kind: TensorKind<T>) {
    this.#owner = owner;
    this.#kind = kind;
  }

  /** Checks that `t` is a live tensor of the owning backend. */
  use(t: Tensor, action: string): T {
    const kind = this.#kind;
    if (!kind.is(t)) {
      throw new TypeError(
        `Cannot ${action}: expected a tensor of a ${kind.backend}, got ${describe(t)}`,
      );
    }
    if (kind.owner(t) !== this.#owner) {
      throw new TypeError(
        `Cannot ${action}: the tensor ${fmt(t.shape)} belongs to another ${kind.backend} instance`,
      );
    }
    if (kind.released(t)) {
      throw new Error(
        `Cannot use a released tensor ${
          fmt(t.shape)
        } (to ${action}): it was freed by release() or dispose(); keep() tensors that must outlive a step`,
      );
    }
    return t;
  }

  /** A live `f32` tensor. */
  float(t: Tensor, action: string, name = "the input"): T {
    return checkDType(this.use(t, action), "f32", action, name);
  }

  /** A live `i32` tensor. */
  int(t: Tensor, action: string, name: string): T {
    return checkDType(this.use(t, action), "i32", action, name);
  }

  /** Two live `f32` tensors `a`, `b` of one shape. */
  pair(a: Tensor, b: Tensor, action: string): [T, T] {
    const x = this.float(a, action, "a"), y = this.float(b, action, "b");
    sameShape(x, y, action);
    return [x, y];
  }

  /** The `f32` input `[N, 2h]` = `[x | gate]` of a gated activation. */
  gatedInput(x: Tensor, action: string): T {
    const t = this.float(x, action, "x");
    const [, cols] = dims2(t, action);
    if (cols % 2 !== 0) {
      throw new RangeError(
        `Cannot ${action}: x must be [N, 2h] = [x | gate], got an odd width in ${fmt(t.shape)}`,
      );
    }
    return t;
  }

  /** The inputs `x [N, 2h]` and `dy [N, h]` of a gated activation's backward pass. */
  gatedPair(x: Tensor, dy: Tensor, action: string): [T, T] {
    const t = this.gatedInput(x, action), g = this.float(dy, action, "dy");
    if (g.shape.length !== 2 || g.shape[0] !== t.shape[0] || 2 * g.shape[1] !== t.shape[1]) {
      throw new RangeError(
        `Cannot ${action}: dy must be [N, h] for x [N, 2h] = ${fmt(t.shape)}, got ${fmt(g.shape)}`,
      );
    }
    return [t, g];
  }

  /** The host values of a 1-D `i32` tensor, each checked to lie in `[0, limit)`. */
  indexVector(t: T, limit: number, action: string): Int32Array {
    if (t.shape.length !== 1) {
      throw new RangeError(`Cannot ${action}: indices must be 1-D [N], got ${fmt(t.shape)}`);
    }
    const ids = this.#kind.indices(t, action);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= limit) {
        throw new RangeError(
          `Cannot ${action}: index ${ids[i]} at position ${i} is outside [0, ${limit})`,
        );
      }
    }
    return ids;
  }

  /** The operand of `Backend.reshape`: `shape` must be valid and hold as many elements as `t`. */
  reshape(t: Tensor, shape: readonly number[], action: string): T {
    const x = this.use(t, action);
    const size = checkShape(shape, action);
    if (size !== x.size) {
      throw new RangeError(
        `Cannot ${action} ${fmt(x.shape)} to ${fmt(shape)}: sizes differ, ${x.size} vs ${size}`,
      );
    }
    return x;
  }

  /** The operands of `Backend.assign`: one shape and one dtype. */
  assign(dst: Tensor, src: Tensor, action: string): [T, T] {
    const d = this.use(dst, action), s = this.use(src, action);
    sameShape(d, s, action);
    if (d.dtype !== s.dtype) {
      throw new TypeError(`Cannot ${action}: dtypes differ, ${d.dtype} vs ${s.dtype}`);
    }
    return [d, s];
  }

  // ---- linear algebra -----------------------------------------------------------------------------

  /** The operands of `Backend.matmul` and the product's sizes. */
  matmul(a: Tensor, b: Tensor, options: MatmulOptions, action: string): MatmulOperands<T> {
    const A = this.float(a, action, "a"), B = this.float(b, action, "b");
    const transA = options.transA ?? false, transB = options.transB ?? false;
    if (typeof transA !== "boolean" || typeof transB !== "boolean") {
      throw new TypeError(`Cannot ${action}: transA and transB must be booleans`);
    }
    const rank = A.shape.length;
    const desc = () =>
      `a ${fmt(A.shape)}${transA ? " (transA)" : ""}, b ${fmt(B.shape)}${
        transB ? " (transB)" : ""
      }`;
    if ((rank !== 2 && rank !== 3) || B.shape.length !== rank) {
      throw new RangeError(
        `Cannot ${action}: operands must be both 2-D or both 3-D, got ${desc()}`,
      );
    }
    const batch = rank === 3 ? A.shape[0] : 1;
    if (rank === 3 && B.shape[0] !== batch) {
      throw new RangeError(`Cannot ${action}: batch sizes differ, ${desc()}`);
    }
    const [ar, ac] = A.shape.slice(-2), [br, bc] = B.shape.slice(-2);
    const M = transA ? ac : ar, K = transA ? ar : ac;
    const N = transB ? br : bc, K2 = transB ? bc : br;
    if (K !== K2) {
      throw new RangeError(`Cannot ${action}: inner dimensions differ (${K} vs ${K2}), ${desc()}`);
    }
    const tri = options.triangular;
    if (tri !== undefined && !["lower-out", "lower-a", "upper-a"].includes(tri)) {
      throw new TypeError(
        `Cannot ${action}: triangular must be "lower-out", "lower-a" or "upper-a", got ${
          JSON.stringify(tri)
        }`,
      );
    }
    const sparse = options.sparse24;
    if (sparse !== undefined && sparse !== "a" && sparse !== "b") {
      throw new TypeError(
        `Cannot ${action}: sparse24 must be "a" or "b", got ${JSON.stringify(sparse)}`,
      );
    }
    if (sparse !== undefined && (rank !== 2 || K % 4 !== 0)) {
      throw new RangeError(
        `Cannot ${action}: a 2:4 operand needs 2-D operands and K a multiple of 4, got ${desc()}`,
      );
    }
    return { A, B, transA, transB, rank, batch, M, N, K };
  }

  /** The operand of `Backend.splitHeads`: `x [B·T, P·d]` with `P` in `[1, 7]` and `heads | d`. */
  splitHeads(x: Tensor, dims: HeadsDims, action: string): { X: T; T: number; hd: number } {
    const X = this.float(x, action, "x");
    const [rows, cols] = dims2(X, action);
    const { batch, heads, parts } = dims;
    const ok = (n: number) => Number.isInteger(n) && n >= 1;
    if (!ok(batch) || !ok(heads) || !ok(parts) || parts > 7) {
      throw new RangeError(
        `Cannot ${action}: batch, heads and parts must be positive integers (parts at most 7), got ${batch}, ${heads}, ${parts}`,
      );
    }
    if (rows % batch !== 0 || cols % (parts * heads) !== 0) {
      throw new RangeError(
        `Cannot ${action}: x must be [B·T, P·h·hd] with B = ${batch}, P = ${parts}, h = ${heads}, got ${
          fmt(X.shape)
        }`,
      );
    }
    return { X, T: rows / batch, hd: cols / (parts * heads) };
  }

  /** The operands of `Backend.mergeHeads`: 1 to 7 tensors of one shape `[B·h, T, hd]`. */
  mergeHeads(
    parts: readonly Tensor[],
    batch: number,
    action: string,
  ): { Ps: T[]; heads: number; T: number; hd: number } {
    if (parts.length < 1 || parts.length > 7) {
      throw new RangeError(`Cannot ${action}: expected 1 to 7 parts, got ${parts.length}`);
    }
    const Ps = parts.map((t, i) => this.float(t, action, `part ${i}`));
    const [bh, T, hd] = Ps[0].shape;
    if (Ps[0].shape.length !== 3 || !Number.isInteger(batch) || batch < 1 || bh % batch !== 0) {
      throw new RangeError(
        `Cannot ${action}: parts must be [B·h, T, hd] with B = ${batch}, got ${fmt(Ps[0].shape)}`,
      );
    }
    for (const P of Ps) sameShape(Ps[0], P, action);
    return { Ps, heads: bh / batch, T, hd };
  }

  /** The operand of `Backend.permute0213`: `dims` must be four dimensions holding `x`'s elements. */
  permute0213(x: Tensor, dims: readonly number[], action: string): T {
    const t = this.float(x, action);
    if (!Array.isArray(dims) || dims.length !== 4) {
      throw new RangeError(`Cannot ${action}: dims must be [A, B, C, D], got ${String(dims)}`);
    }
    const size = checkShape(dims, action);
    if (size !== t.size) {
      throw new RangeError(
        `Cannot ${action}: dims ${fmt(dims)} hold ${size} values, the tensor ${
          fmt(t.shape)
        } has ${t.size}`,
      );
    }
    return t;
  }

  /**
   * The operand of `Backend.sliceCols` (`op` `"slice"`: `x [rows, cols]`, `n` the block's width)
   * or `Backend.padCols` (`"pad"`: `x [rows, width]`, `n` the padded width `cols`): 2-D, and the
   * block `[start, start + width)` inside the `cols` columns.
   */
  columnBlock(x: Tensor, start: number, n: number, op: "slice" | "pad"): ColumnBlock<T> {
    const action = `${op} columns`, slice = op === "slice";
    const t = this.float(x, action);
    const [rows, own] = dims2(t, action);
    const cols = slice ? own : n, width = slice ? n : own;
    checkIndex(start, "start", action);
    checkIndex(n, slice ? "width" : "cols", action);
    if (start + width > cols) {
      throw new RangeError(
        slice
          ? `Cannot ${action}: columns [${start}, ${start + width}) exceed the ${cols} columns of ${
            fmt(t.shape)
          }`
          : `Cannot ${action}: ${fmt(t.shape)} placed at column ${start} needs ${
            start + width
          } columns, got ${cols}`,
      );
    }
    return { t, rows, cols, width };
  }

  // ---- element-wise -------------------------------------------------------------------------------

  /** The operand of `Backend.dropout`: `p ∈ [0, 1)`, `seed ∈ [0, 2^53)`, `stream ∈ [0, 2^32)`. */
  dropout(x: Tensor, p: number, seed: number, stream: number, action: string): T {
    const t = this.float(x, action);
    if (typeof p !== "number" || !(p >= 0 && p < 1)) {
      throw new RangeError(`Cannot ${action}: p must be in [0, 1), got ${p}`);
    }
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 53) {
      throw new RangeError(`Cannot ${action}: seed must be an integer in [0, 2^53), got ${seed}`);
    }
    if (!Number.isInteger(stream) || stream < 0 || stream >= 2 ** 32) {
      throw new RangeError(
        `Cannot ${action}: stream must be an integer in [0, 2^32), got ${stream}`,
      );
    }
    return t;
  }

  // ---- normalisation, attention, embedding, loss --------------------------------------------------

  /** The operands of `Backend.layerNorm`: `x [N, d]` with `d ≥ 1`, `w`, `b` `[d]`, `eps > 0`. */
  layerNorm(
    [x, w, b, eps]: Parameters<Backend["layerNorm"]>,
    action: string,
  ): { X: T; W: T; B: T; n: number; d: number } {
    const X = this.float(x, action, "x"), W = this.float(w, action, "w");
    const B = this.float(b, action, "b");
    const [n, d] = dims2(X, action);
    if (d < 1) {
      throw new RangeError(`Cannot ${action}: rows must not be empty, got ${fmt(X.shape)}`);
    }
    vector(W, d, action, "w", X);
    vector(B, d, action, "b", X);
    if (typeof eps !== "number" || !Number.isFinite(eps) || eps <= 0) {
      throw new RangeError(`Cannot ${action}: eps must be a positive finite number, got ${eps}`);
    }
    return { X, W, B, n, d };
  }

  /** The operands of `Backend.layerNormBackward`: `x`, `dy` `[N, d]`, `w [d]`, `mean`, `rstd [N]`. */
  layerNormBackward(
    [x, w, mean, rstd, dy]: Parameters<Backend["layerNormBackward"]>,
    action: string,
  ): { X: T; W: T; Mu: T; Rs: T; G: T; n: number; d: number } {
    const X = this.float(x, action, "x"), W = this.float(w, action, "w");
    const Mu = this.float(mean, action, "mean"), Rs = this.float(rstd, action, "rstd");
    const G = this.float(dy, action, "dy");
    const [n, d] = dims2(X, action);
    sameShape(X, G, action);
    vector(W, d, action, "w", X);
    vector(Mu, n, action, "mean", X);
    vector(Rs, n, action, "rstd", X);
    return { X, W, Mu, Rs, G, n, d };
  }

  /** The operands of `Backend.causalSoftmax`: scores `[B, T, T]` and a finite `scale`. */
  causalSoftmax(s: Tensor, scale: number, action: string): { S: T; batch: number; T: number } {
    const S = this.float(s, action);
    if (S.shape.length !== 3 || S.shape[1] !== S.shape[2]) {
      throw new RangeError(`Cannot ${action}: scores must be [B, T, T], got ${fmt(S.shape)}`);
    }
    checkFinite(scale, "scale", action);
    return { S, batch: S.shape[0], T: S.shape[1] };
  }

  /**
   * The operands of `Backend.softmaxBackward`: `p`, `dp` of one shape, a finite `scale` and, with
   * `causal`, `[B, T, T]` slices; also the rows and row width.
   */
  softmaxBackward(
    p: Tensor,
    dp: Tensor,
    options: SoftmaxBackwardOptions,
    action: string,
  ): { P: T; G: T; rows: number; width: number } {
    const [P, G] = this.pair(p, dp, action);
    if (options.scale !== undefined) checkFinite(options.scale, "scale", action);
    if (options.causal && (P.shape.length !== 3 || P.shape[1] !== P.shape[2])) {
      throw new RangeError(
        `Cannot ${action}: a causal softmax's p must be [B, T, T], got ${fmt(P.shape)}`,
      );
    }
    const width = P.shape[P.shape.length - 1];
    return { P, G, rows: width === 0 ? 0 : P.size / width, width };
  }

  /**
   * The operands of `Backend.causalAttention`: `q`, `k`, `v` of one shape `[BH, T, hd]` and a
   * finite `scale`.
   */
  attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    scale: number,
    action: string,
  ): { Q: T; K: T; V: T; bh: number; T: number; hd: number } {
    const Q = this.float(q, action, "q"), K = this.float(k, action, "k");
    const V = this.float(v, action, "v");
    if (Q.shape.length !== 3) {
      throw new RangeError(`Cannot ${action}: q must be [BH, T, hd], got ${fmt(Q.shape)}`);
    }
    sameShape(Q, K, action);
    sameShape(Q, V, action);
    checkFinite(scale, "scale", action);
    const [bh, t, hd] = Q.shape;
    return { Q, K, V, bh, T: t, hd };
  }

  /**
   * The operands of `Backend.causalAttentionBackward`: the forward's operands, `out` and `dOut` of
   * their shape, `lse` `[BH, T]`.
   */
  attentionBackward(
    saved: AttentionSaved,
    dOut: Tensor,
    action: string,
  ): { Q: T; K: T; V: T; O: T; L: T; G: T; bh: number; T: number; hd: number } {
    const { Q, K, V, bh, T: t, hd } = this.attention(
      saved.q,
      saved.k,
      saved.v,
      saved.scale,
      action,
    );
    const O = this.float(saved.out, action, "out"), G = this.float(dOut, action, "dOut");
    const L = this.float(saved.lse, action, "lse");
    sameShape(Q, O, action);
    sameShape(Q, G, action);
    if (L.shape.length !== 2 || L.shape[0] !== bh || L.shape[1] !== t) {
      throw new RangeError(
        `Cannot ${action}: lse must be [BH, T] = [${bh}, ${t}], got ${fmt(L.shape)}`,
      );
    }
    return { Q, K, V, O, L, G, bh, T: t, hd };
  }

  /** The inputs of an embedding lookup: `table [V, d]` and `idx [N]` in `[0, V)`. */
  embedding(
    table: Tensor,
    idx: Tensor,
    action: string,
  ): { Tb: T; ids: Int32Array; I: T; vocab: number; d: number } {
    const Tb = this.float(table, action, "table"), I = this.int(idx, action, "idx");
    const [vocab, d] = dims2(Tb, action);
    return { Tb, I, ids: this.indexVector(I, vocab, action), vocab, d };
  }

  /** The inputs of an embedding backward pass: `idx [N]` in `[0, vocab)` and `dy [N, d]`. */
  embeddingBackward(
    idx: Tensor,
    dy: Tensor,
    vocab: number,
    action: string,
  ): { I: T; G: T; ids: Int32Array; n: number; d: number } {
    const I = this.int(idx, action, "idx"), G = this.float(dy, action, "dy");
    checkIndex(vocab, "vocab", action);
    const [n, d] = dims2(G, action);
    const ids = this.indexVector(I, vocab, action);
    if (ids.length !== n) {
      throw new RangeError(
        `Cannot ${action}: idx ${fmt(I.shape)} and dy ${fmt(G.shape)} have different row counts`,
      );
    }
    return { I, G, ids, n, d };
  }

  /** The inputs of a cross-entropy: `logits [N, C]` (`N, C ≥ 1`) and `targets [N]` in `[0, C)`. */
  crossEntropy(logits: Tensor, targets: Tensor, action: string): CrossEntropyOperands<T> {
    const Z = this.float(logits, action, "logits"), T = this.int(targets, action, "targets");
    const [n, c] = dims2(Z, action);
    if (n < 1 || c < 1) {
      throw new RangeError(
        `Cannot ${action}: logits must be [N, C] with N, C ≥ 1, got ${fmt(Z.shape)}`,
      );
    }
    const t = this.indexVector(T, c, action);
    if (t.length !== n) {
      throw new RangeError(
        `Cannot ${action}: targets ${fmt(T.shape)} do not match logits ${fmt(Z.shape)}`,
      );
    }
    return { Z, T, t, n, c };
  }

  /** The operands of `Backend.crossEntropyBackward`: those of a cross-entropy and `dLoss [1]`. */
  crossEntropyBackward(
    logits: Tensor,
    targets: Tensor,
    dLoss: Tensor,
    action: string,
  ): CrossEntropyOperands<T> & { L: T } {
    const inputs = this.crossEntropy(logits, targets, action);
    const L = this.float(dLoss, action, "dLoss");
    if (L.shape.length !== 1 || L.shape[0] !== 1) {
      throw new RangeError(`Cannot ${action}: dLoss must be [1], got ${fmt(L.shape)}`);
    }
    return { ...inputs, L };
  }

  /** The operand of `Backend.meanRows`: 2-D with at least one row. */
  meanRows(x: Tensor, action: string): { X: T; n: number; d: number } {
    const X = this.float(x, action);
    const [n, d] = dims2(X, action);
    if (n < 1) throw new RangeError(`Cannot ${action}: no rows in ${fmt(X.shape)}`);
    return { X, n, d };
  }

  // ---- optimizer ----------------------------------------------------------------------------------

  /**
   * A {@linkcode GradClip}: a `[1]` float tensor of this backend and a finite positive threshold.
   *
   * @returns The `normSquared` tensor.
   */
  gradClip(clip: GradClip, action: string): T {
    if (clip === null || typeof clip !== "object") {
      throw new TypeError(`Cannot ${action}: the gradient clip must be an object, got ${clip}`);
    }
    const n = this.float(clip.normSquared, action, "the squared gradient norm");
    if (n.size !== 1) {
      throw new RangeError(
        `Cannot ${action}: the squared gradient norm must be a [1] tensor, got ${fmt(n.shape)}`,
      );
    }
    checkRange(clip.maxNorm, "maxNorm", action, (x) => x > 0, "a finite number > 0");
    return n;
  }

  /**
   * The operands of `Backend.adamw`: one shape, `param`, `m`, `v` on distinct storage, and every
   * hyper-parameter in range.
   */
  adamw(
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    hp: AdamWParams,
    action: string,
  ): { P: T; G: T; M: T; V: T } {
    const P = this.float(param, action, "param"), G = this.float(grad, action, "grad");
    const M = this.float(m, action, "m"), V = this.float(v, action, "v");
    sameShape(P, G, action);
    sameShape(P, M, action);
    sameShape(P, V, action);
    if (P.storage === M.storage || P.storage === V.storage || M.storage === V.storage) {
      throw new RangeError(`Cannot ${action}: param, m and v must be distinct tensors`);
    }
    if (hp === null || typeof hp !== "object") {
      throw new TypeError(`Cannot ${action}: hyper-parameters must be an object, got ${hp}`);
    }
    const { lr, beta1, beta2, eps, weightDecay, step } = hp;
    checkRange(lr, "lr", action, (x) => x >= 0, "a finite number ≥ 0");
    checkRange(beta1, "beta1", action, (x) => x >= 0 && x < 1, "in [0, 1)");
    checkRange(beta2, "beta2", action, (x) => x >= 0 && x < 1, "in [0, 1)");
    checkRange(eps, "eps", action, (x) => x > 0, "a finite number > 0");
    checkRange(weightDecay, "weightDecay", action, (x) => x >= 0, "a finite number ≥ 0");
    if (typeof hp.gradScale === "object") this.gradClip(hp.gradScale, action);
    else if (hp.gradScale !== undefined) {
      checkRange(hp.gradScale, "gradScale", action, (x) => x > 0, "a finite number > 0");
    }
    if (!Number.isInteger(step) || step < 1) {
      throw new RangeError(`Cannot ${action}: step must be a positive integer, got ${step}`);
    }
    const frozenAt = hp.varianceFrozenAt;
    if (
      frozenAt !== undefined && (!Number.isInteger(frozenAt) || frozenAt < 1 || frozenAt > step)
    ) {
      throw new RangeError(
        `Cannot ${action}: varianceFrozenAt must be an integer in [1, step = ${step}], got ${frozenAt}`,
      );
    }
    return { P, G, M, V };
  }
}

// ---- memory ---------------------------------------------------------------------------------------

/** Checks the arguments of `Backend.tensor`. */
export function checkTensorData(data: Float32Array | Float64Array, shape: readonly number[]): void {
  const action = "create a tensor";
  if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
    throw new TypeError(
      `Cannot ${action}: data must be a Float32Array or Float64Array, got ${describe(data)}`,
    );
  }
  checkDataSize(shape, data.length, action);
}

/** Checks the arguments of `Backend.indices`. */
export function checkIndexData(data: Int32Array, shape: readonly number[]): void {
  const action = "create an index tensor";
  if (!(data instanceof Int32Array)) {
    throw new TypeError(`Cannot ${action}: data must be an Int32Array, got ${describe(data)}`);
  }
  checkDataSize(shape, data.length, action);
}

function checkDataSize(shape: readonly number[], length: number, action: string): void {
  const size = checkShape(shape, action);
  if (size !== length) {
    throw new RangeError(
      `Cannot ${action}: shape ${fmt(shape)} holds ${size} values, data has ${length}`,
    );
  }
}

/** Checks the arguments of `Backend.full`; returns the number of elements. */
/**
 * Checks the operand list of `Backend.sumSquaresMany`: an array of at least one tensor.
 *
 * @throws {RangeError} If `ts` is empty or not an array.
 */
export function checkSumSquaresMany(ts: readonly Tensor[]): void {
  if (!Array.isArray(ts) || ts.length === 0) {
    throw new RangeError(
      `Cannot sum squares over tensors: expected at least one tensor, got ${
        Array.isArray(ts) ? "none" : String(ts)
      }`,
    );
  }
}

export function checkFill(shape: readonly number[], value: number): number {
  const action = "fill a tensor";
  const size = checkShape(shape, action);
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${action}: value must be a number, got ${typeof value}`);
  }
  if (Number.isNaN(value)) throw new RangeError(`Cannot ${action}: value is NaN`);
  return size;
}

// ---- building blocks ------------------------------------------------------------------------------

/** Checks that `x` has `dtype`; returns it. */
function checkDType<T extends Tensor>(x: T, dtype: DType, action: string, name: string): T {
  if (x.dtype !== dtype) {
    throw new TypeError(`Cannot ${action}: ${name} must be an ${dtype} tensor, got ${x.dtype}`);
  }
  return x;
}

/** Checks that `shape` is a non-empty array of non-negative integers; returns its product. */
function checkShape(shape: readonly number[], action: string): number {
  if (!Array.isArray(shape) || shape.length === 0) {
    throw new RangeError(
      `Cannot ${action}: a shape must be a non-empty array of dimensions, got ${String(shape)}`,
    );
  }
  let size = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(
        `Cannot ${action}: dimensions must be non-negative integers, got ${fmt(shape)}`,
      );
    }
    size *= d;
  }
  return size;
}

/** Checks that `n` is a non-negative integer. */
function checkIndex(n: number, name: string, action: string): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`Cannot ${action}: ${name} must be a non-negative integer, got ${n}`);
  }
}

/** Checks that `s` is a finite number. */
export function checkFinite(s: number, name: string, action: string): void {
  if (typeof s !== "number" || !Number.isFinite(s)) {
    throw new RangeError(`Cannot ${action}: ${name} must be a finite number, got ${s}`);
  }
}

/** Checks that `x` is a finite number that passes `ok` (described by `what`). */
function checkRange(
  x: number,
  name: string,
  action: string,
  ok: (x: number) => boolean,
  what: string,
): void {
  if (typeof x !== "number" || !Number.isFinite(x) || !ok(x)) {
    throw new RangeError(`Cannot ${action}: ${name} must be ${what}, got ${x}`);
  }
}

/** Checks that `a` and `b` have one shape. */
export function sameShape(a: Tensor, b: Tensor, action: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new RangeError(`Cannot ${action}: shapes differ, ${fmt(a.shape)} vs ${fmt(b.shape)}`);
  }
}

/** Checks that `t` is 2-D; returns its dimensions. */
export function dims2(t: Tensor, action: string): [number, number] {
  if (t.shape.length !== 2) {
    throw new RangeError(`Cannot ${action}: expected a 2-D tensor, got ${fmt(t.shape)}`);
  }
  return [t.shape[0], t.shape[1]];
}

/** Checks that `t` (named `name`) is `[length]`, a per-row or per-column vector of `x`. */
function vector(t: Tensor, length: number, action: string, name: string, x: Tensor): void {
  if (t.shape.length !== 1 || t.shape[0] !== length) {
    throw new RangeError(
      `Cannot ${action}: ${name} must be [${length}] for x ${fmt(x.shape)}, got ${fmt(t.shape)}`,
    );
  }
}

/** A shape as error messages write it, `[2, 3]`. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** What `x` is, for an error message: its class name or `typeof`. */
function describe(x: unknown): string {
  if (x === null) return "null";
  if (typeof x !== "object") return typeof x;
  return (x as object).constructor?.name ?? "object";
}
