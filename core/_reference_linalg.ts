/**
 * The reference backend's linear algebra: the matrix product (float64 dot products, rounded once)
 * and the layout operations (transpose, axis permutation, column slices and padding). Private to
 * `core/`; {@linkcode ReferenceBackend} documents each operation.
 *
 * @module
 */

import type { HeadsDims, MatmulOptions, Tensor } from "./backend.ts";
import { dims2 } from "./backend_checks.ts";
import {
  floats,
  type FloatStorage,
  type ReferenceContext,
  type ReferenceTensor,
} from "./reference_storage.ts";

export function matmul(
  ctx: ReferenceContext,
  a: Tensor,
  b: Tensor,
  options: MatmulOptions = {},
): Tensor {
  const operands = ctx.check.matmul(a, b, options, "matmul");
  const { A, B, transA, transB, rank, batch, M, N, K } = operands;
  const result = ctx.alloc(rank === 3 ? [batch, M, N] : [M, N]), out = floats(result);
  const ad = A.storage.data, bd = B.storage.data;
  const aRow = new Float64Array(K), acc = new Float64Array(N), bKN = new Float64Array(K * N);
  for (let bi = 0; bi < batch; bi++) {
    const aOff = bi * M * K, bOff = bi * K * N, oOff = bi * M * N;
    // b as a float64 [K, N] copy, so one monomorphic kernel serves every transpose case.
    if (transB) {
      for (let j = 0; j < N; j++) {
        for (let k = 0; k < K; k++) bKN[k * N + j] = bd[bOff + j * K + k];
      }
    } else {
      for (let q = 0; q < K * N; q++) bKN[q] = bd[bOff + q];
    }
    for (let i = 0; i < M; i++) {
      for (let k = 0; k < K; k++) aRow[k] = transA ? ad[aOff + k * M + i] : ad[aOff + i * K + k];
      matmulRow(aRow, bKN, acc, K, N);
      out.set(acc, oOff + i * N);
    }
  }
  return result;
}

export function transpose(ctx: ReferenceContext, a: Tensor): Tensor {
  const action = "transpose";
  const x = ctx.check.float(a, action);
  const [rows, cols] = dims2(x, action);
  const res = ctx.alloc([cols, rows]), out = floats(res);
  const d = x.storage.data;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = d[r * cols + c];
  }
  return res;
}

export function permute0213(
  ctx: ReferenceContext,
  x: Tensor,
  dims: readonly [number, number, number, number],
): Tensor {
  const action = "permute axes 1 and 2";
  const t = ctx.check.permute0213(x, dims, action);
  const [A, B, C, D] = dims;
  const res = ctx.alloc([A, C, B, D]), out = floats(res);
  const d = t.storage.data as FloatStorage;
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const src = ((a * B + b) * C + c) * D, dst = ((a * C + c) * B + b) * D;
        out.set(d.subarray(src, src + D), dst);
      }
    }
  }
  return res;
}

/**
 * Visits every `hd`-wide run of attention's head layout: part `i`, its offset in the packed rows
 * `x [B·T, P·d]` and in the part's `[B·h, T, hd]` tensor.
 */
function forEachHead(
  dims: { batch: number; T: number; heads: number; hd: number; parts: number },
  visit: (i: number, xAt: number, partAt: number) => void,
): void {
  const { batch, T, heads, hd, parts } = dims, d = heads * hd;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < T; t++) {
        const partAt = ((b * heads + h) * T + t) * hd;
        for (let i = 0; i < parts; i++) visit(i, (b * T + t) * parts * d + i * d + h * hd, partAt);
      }
    }
  }
}

export function splitHeads(ctx: ReferenceContext, x: Tensor, dims: HeadsDims): Tensor[] {
  const { X, T, hd } = ctx.check.splitHeads(x, dims, "split attention heads");
  const { batch, heads, parts } = dims;
  const res = Array.from({ length: parts }, () => ctx.alloc([batch * heads, T, hd]));
  const d = X.storage.data as FloatStorage, outs = res.map(floats);
  forEachHead({ batch, T, heads, hd, parts }, (i, xAt, partAt) => {
    outs[i].set(d.subarray(xAt, xAt + hd), partAt);
  });
  return res;
}

export function mergeHeads(ctx: ReferenceContext, parts: readonly Tensor[], batch: number): Tensor {
  const { Ps, heads, T, hd } = ctx.check.mergeHeads(parts, batch, "merge attention heads");
  const P = Ps.length, res = ctx.alloc([batch * T, P * heads * hd]), out = floats(res);
  const ins = Ps.map((t) => t.storage.data as FloatStorage);
  forEachHead({ batch, T, heads, hd, parts: P }, (i, xAt, partAt) => {
    out.set(ins[i].subarray(partAt, partAt + hd), xAt);
  });
  return res;
}

export function sliceCols(ctx: ReferenceContext, x: Tensor, start: number, width: number): Tensor {
  const { t, rows, cols } = ctx.check.columnBlock(x, start, width, "slice");
  return copyColumns(ctx, t, rows, width, { stride: cols, start }, { stride: width, start: 0 });
}

export function padCols(ctx: ReferenceContext, x: Tensor, start: number, cols: number): Tensor {
  const { t, rows, width } = ctx.check.columnBlock(x, start, cols, "pad");
  return copyColumns(ctx, t, rows, width, { stride: width, start: 0 }, { stride: cols, start });
}

/** Where a block of columns sits in a row-major matrix: its row length and first column. */
interface ColumnPlace {
  stride: number;
  start: number;
}

// The one loop of sliceCols and padCols: a new [rows, to.stride] tensor holding, per row, the
// `width` values of `t` at `from`, placed at `to`; zeros elsewhere.
function copyColumns(
  ctx: ReferenceContext,
  t: ReferenceTensor,
  rows: number,
  width: number,
  from: ColumnPlace,
  to: ColumnPlace,
): Tensor {
  const res = ctx.alloc([rows, to.stride]), out = floats(res);
  const d = t.storage.data as FloatStorage;
  for (let r = 0; r < rows; r++) {
    const src = r * from.stride + from.start;
    out.set(d.subarray(src, src + width), r * to.stride + to.start);
  }
  return res;
}

/**
 * One output row of a matrix product, `acc[j] = Σ_k aRow[k]·b[k, j]` in ascending `k` (i-k-j
 * order: the inner loop runs over a contiguous row of `b`).
 */
function matmulRow(aRow: Float64Array, b: Float64Array, acc: Float64Array, K: number, N: number) {
  acc.fill(0);
  for (let k = 0; k < K; k++) {
    const aik = aRow[k], row = k * N;
    for (let j = 0; j < N; j++) acc[j] += aik * b[row + j];
  }
}
