/**
 * The reference's row loops whose serial sums bound them, four rows at a time (LayerNorm's forward
 * pass, the softmax backward): the reference's float64 operations in its order
 * (`core/reference_nn.ts`: identical results). A row's sum is a chain of dependent additions bounded
 * by the adder's latency; four independent chains keep it busy (LayerNorm about 1.4× faster). The
 * last block of a range repeats the range's final row where its length is not a multiple of 4 (the
 * same values written twice). Kernels of row ranges for `_kernels.ts`. LayerNorm's backward pass gained nothing this way (its loop is bounded by throughput), so
 * the reference's runs. Private to `core/cpu/`.
 *
 * @module
 */

/** The four rows of the block at `r` (clamped to the last row) and how many are real. */
function block(r: number, n: number): [number, number, number, number, number] {
  const last = n - 1;
  return [
    r,
    Math.min(r + 1, last),
    Math.min(r + 2, last),
    Math.min(r + 3, last),
    Math.min(4, n - r),
  ];
}

/** Rows `[start, end)` of `y = (x − mean)·rstd·w + b` (`x[n, d]`), with each row's mean and rstd. */
export function layerNormRows(
  x: Float32Array,
  params: { w: Float32Array; b: Float32Array; eps: number },
  out: { y: Float32Array; mean: Float32Array; rstd: Float32Array },
  d: number,
  start: number,
  end: number,
): void {
  const { w, b, eps } = params, { y, mean, rstd } = out;
  for (let r = start; r < end; r += 4) {
    const [r0, r1, r2, r3] = block(r, end);
    const o0 = r0 * d, o1 = r1 * d, o2 = r2 * d, o3 = r3 * d;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let c = 0; c < d; c++) {
      s0 += x[o0 + c];
      s1 += x[o1 + c];
      s2 += x[o2 + c];
      s3 += x[o3 + c];
    }
    const m0 = s0 / d, m1 = s1 / d, m2 = s2 / d, m3 = s3 / d;
    let q0 = 0, q1 = 0, q2 = 0, q3 = 0;
    for (let c = 0; c < d; c++) {
      q0 += (x[o0 + c] - m0) ** 2;
      q1 += (x[o1 + c] - m1) ** 2;
      q2 += (x[o2 + c] - m2) ** 2;
      q3 += (x[o3 + c] - m3) ** 2;
    }
    const rs0 = 1 / Math.sqrt(q0 / d + eps), rs1 = 1 / Math.sqrt(q1 / d + eps);
    const rs2 = 1 / Math.sqrt(q2 / d + eps), rs3 = 1 / Math.sqrt(q3 / d + eps);
    for (let c = 0; c < d; c++) {
      const wc = w[c], bc = b[c];
      y[o0 + c] = (x[o0 + c] - m0) * rs0 * wc + bc;
      y[o1 + c] = (x[o1 + c] - m1) * rs1 * wc + bc;
      y[o2 + c] = (x[o2 + c] - m2) * rs2 * wc + bc;
      y[o3 + c] = (x[o3 + c] - m3) * rs3 * wc + bc;
    }
    [mean[r0], mean[r1], mean[r2], mean[r3]] = [m0, m1, m2, m3];
    [rstd[r0], rstd[r1], rstd[r2], rstd[r3]] = [rs0, rs1, rs2, rs3];
  }
}

/**
 * Rows `[start, end)` of `out = p ⊙ (dp − Σ_row p·dp)`, rows of width `d`, then `scale·out` as
 * the reference: the stored float32 result times `scale`, rounded again.
 */
export function softmaxBackwardRows(
  p: Float32Array,
  dp: Float32Array,
  out: Float32Array,
  d: number,
  scale: number,
  start: number,
  end: number,
): void {
  for (let r = start; r < end; r += 4) {
    const [r0, r1, r2, r3] = block(r, end);
    const o0 = r0 * d, o1 = r1 * d, o2 = r2 * d, o3 = r3 * d;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let c = 0; c < d; c++) {
      s0 += p[o0 + c] * dp[o0 + c];
      s1 += p[o1 + c] * dp[o1 + c];
      s2 += p[o2 + c] * dp[o2 + c];
      s3 += p[o3 + c] * dp[o3 + c];
    }
    for (let c = 0; c < d; c++) {
      out[o0 + c] = p[o0 + c] * (dp[o0 + c] - s0);
      out[o1 + c] = p[o1 + c] * (dp[o1 + c] - s1);
      out[o2 + c] = p[o2 + c] * (dp[o2 + c] - s2);
      out[o3 + c] = p[o3 + c] * (dp[o3 + c] - s3);
    }
  }
  if (scale !== 1) { for (let i = start * d; i < end * d; i++) out[i] = scale * out[i]; }
}
