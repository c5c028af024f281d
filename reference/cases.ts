/**
 * The hand-derived cases of SPEC §9 and the shared edge values, defined once: the oracle tests,
 * the exported test vectors (`reference/vectors.ts`) and the GPU parity tests all import them.
 *
 * @module
 */

/** The smallest positive float32 subnormal, `2^-149`. */
export const MIN_SUBNORMAL_F32 = 2 ** -149;
/** The smallest positive normal float32, `2^-126`. */
export const MIN_NORMAL_F32 = 2 ** -126;
/** The largest finite float32, `(2 − 2^-23) · 2^127`. */
export const MAX_F32 = 3.4028234663852886e38;

/** A hard 2:4 case: one group, the kept positions (ascending) and the pruned output. */
export interface Hard24Case {
  /** The group of four weights. */
  readonly w: readonly number[];
  /** The kept positions, ascending. */
  readonly kept: readonly number[];
  /** The pruned group. */
  readonly out: readonly number[];
}

/** SPEC §9 hard 2:4 cases (ties: the higher index wins). */
export const SPEC_HARD_24: readonly Hard24Case[] = [
  { w: [0.1, -3, 2, 0.5], kept: [1, 2], out: [0, -3, 2, 0] },
  { w: [1, 1, 1, 1], kept: [2, 3], out: [0, 0, 1, 1] },
  { w: [0, 0, 0, 0], kept: [2, 3], out: [0, 0, 0, 0] },
  { w: [1, -1, 0.5, 0.5], kept: [0, 1], out: [1, -1, 0, 0] },
  { w: [2, 1, 1, 0], kept: [0, 2], out: [2, 0, 1, 0] },
  { w: [3, -3, 3, -3], kept: [2, 3], out: [0, 0, 3, -3] },
  { w: [1, 2, 3, 4], kept: [2, 3], out: [0, 0, 3, 4] },
  { w: [-1, 2, -3, 4], kept: [2, 3], out: [0, 0, -3, 4] },
  { w: [0.3, -0.3, 300, 1e-3], kept: [1, 2], out: [0, -0.3, 300, 0] },
];

/** A soft-threshold case: one group, the output and the mask (τ = second-smallest magnitude). */
export interface Soft24Case {
  /** The group of four weights. */
  readonly w: readonly number[];
  /** The soft-thresholded group. */
  readonly out: readonly number[];
  /** The 0/1 mask of the two largest magnitudes. */
  readonly mask: readonly number[];
}

/** SPEC §9 soft-threshold cases. */
export const SPEC_SOFT_24: readonly Soft24Case[] = [
  { w: [0.1, -3, 2, 0.5], out: [0, -2.5, 1.5, 0], mask: [0, 1, 1, 0] },
  { w: [1, 1, 1, 1], out: [0, 0, 0, 0], mask: [0, 0, 1, 1] },
  { w: [1, -1, 0.5, 0.5], out: [0.5, -0.5, 0, 0], mask: [1, 1, 0, 0] },
  { w: [2, 1, 1, 0], out: [1, 0, 0, 0], mask: [1, 0, 1, 0] },
  { w: [3, -3, 3, -3], out: [0, 0, 0, 0], mask: [0, 0, 1, 1] },
  { w: [1, 2, 3, 4], out: [0, 0, 1, 2], mask: [0, 0, 1, 1] },
  { w: [-1, 2, -3, 4], out: [0, 0, -1, 2], mask: [0, 0, 1, 1] },
  { w: [0, 0, 0, 5], out: [0, 0, 0, 5], mask: [0, 0, 1, 1] },
];

/** SPEC §9: β of the single group `[0.1, −3, 2, 0.5]` is 10.5/8.5 = 21/17. */
export const SPEC_BETA = { w: [0.1, -3, 2, 0.5], beta: 21 / 17 } as const;

/**
 * SPEC §9 MVUE cases (ε ignored): inclusion probabilities, kept values `x/p`, pair probabilities,
 * and the draw with injected uniforms `(0.5, 0.5)`.
 */
export const SPEC_MVUE = {
  w: [0.1, -3, 2, 0.5],
  p: [0.050133, 0.895595, 0.810738, 0.243534],
  scaled: [1.994699, -3.34973, 2.466887, 2.053099],
  /** Probability that the pair `{i, j}` is kept, keyed `"ij"`. */
  pairs: {
    "01": 0.030345,
    "02": 0.016414,
    "03": 0.003374,
    "12": 0.709707,
    "13": 0.155543,
    "23": 0.084617,
  },
  uniforms: [0.5, 0.5],
  /** `(0.5, 0.5)` picks 1, then 2. */
  sampled: [0, -3.34973, 2.466887, 0],
  ascending: { w: [1, 2, 3, 4], p: [0.234524, 0.44127, 0.608333, 0.715873] },
  equal: { w: [1, 1, 1, 1], p: 0.5, kept: 2 },
} as const;

/** SPEC §9 transposable-mask blocks (abs criterion), each a 4×4 block with its best pattern. */
export const SPEC_TRANSPOSABLE = [
  {
    name: "unique best",
    block: [[0.1, -3, 2, 0.5], [4, 0.2, -0.3, 1], [0.5, 1, -2, 3], [-1, 2, 0.1, 0.2]],
    pattern: 54,
    retained: 18,
  },
  {
    name: "arange(1..16): all 90 tie",
    block: [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]],
    pattern: 0,
    retained: 68,
  },
  {
    name: "all zeros",
    block: [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    pattern: 0,
    retained: 0,
  },
] as const;

/** SPEC §9 masked decay: `grad + α·(1 − mask)·w`. */
export const SPEC_MASKED_DECAY = {
  grad: [1, 1, 1, 1],
  w: [1, 2, 3, 4],
  mask: [1, 0, 1, 0],
  alpha: 0.03,
  out: [1, 1.06, 1, 1.12],
} as const;

/** SPEC §9 GEGLU on input `[x | gate]` with ∂out = 1. */
export const SPEC_GEGLU = {
  input: [0.5, -1, 2, 0, 1, -2],
  out: [0, -0.841192, -0.090804],
  dx: [0, 0.841192, -0.045402],
  dgate: [0.25, -1.082964, -0.172198],
} as const;

/** SPEC §9 FP8 rounding without scaling: `[input, rounded]` pairs per format. */
export const SPEC_FP8: Readonly<Record<"e4m3" | "e5m2", readonly (readonly [number, number])[]>> = {
  e4m3: [[2.7, 2.75], [300, 288], [-0.3, -0.3125]],
  e5m2: [[2.7, 2.5], [300, 320]],
};

/** SPEC §9 compressed 2:4: a 16-wide row, its kept values and its four metadata codes. */
export const SPEC_COMPRESS = {
  row: [0.1, -3, 2, 0.5, 4, 0.2, -0.3, 1, 0.5, 1, -2, 3, -1, 2, 0.1, 0.2],
  values: [-3, 2, 4, 1, -2, 3, -1, 2],
  codes: [9, 12, 14, 4],
} as const;

/** Edge groups of four and what they exercise (the exported vectors' description). */
export interface EdgeGroups {
  /** What the groups exercise. */
  readonly note: string;
  /** The groups, four values each. */
  readonly groups: readonly (readonly number[])[];
}

/** Hard 2:4 edge groups. */
export const EDGE_GROUPS_PRUNE_24: EdgeGroups = {
  note: "±Inf as magnitudes (Inf and -Inf tie), signed zeros, subnormals, float32 extremes, " +
    "sign-only ties",
  groups: [
    [Infinity, 1, 2, 3],
    [1, -Infinity, Infinity, 0],
    [Infinity, Infinity, Infinity, Infinity],
    [-Infinity, 5, -Infinity, 5],
    [-0, 0, -0, 0],
    [MIN_SUBNORMAL_F32, 2 * MIN_SUBNORMAL_F32, 2 ** -130, 0],
    [3, MIN_SUBNORMAL_F32, -MIN_SUBNORMAL_F32, 0],
    [MAX_F32, -MAX_F32, 1, -1],
    [-2, 2, -2, 2],
    [5, 0, 0, 0],
    [0, 0, 0, 5],
    [MIN_NORMAL_F32, -(2 ** -127), 2 ** -127, -MIN_NORMAL_F32],
  ],
};

/** Soft-threshold edge groups. */
export const EDGE_GROUPS_SOFT_24: EdgeGroups = {
  note:
    "Kept ±Inf with finite τ gives ±Inf; τ = Inf gives zeros (never Inf − Inf); signed zeros; " +
    "subnormals; 2nd/3rd magnitude ties; float32 extremes",
  groups: [
    [Infinity, 1, 2, 3],
    [Infinity, Infinity, Infinity, 1],
    [Infinity, -Infinity, 0, 0],
    [-Infinity, 1, -Infinity, 2],
    [-0, 0, -0, 0],
    [MIN_SUBNORMAL_F32, 3 * MIN_SUBNORMAL_F32, 2 ** -130, -(2 ** -140)],
    [1, 2, 2, 3],
    [MAX_F32, -MAX_F32, 0, 1],
    [-5, 5, -5, 5],
    [1e-3, -2e-3, 3e30, -4e30],
  ],
};
