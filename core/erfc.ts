/**
 * The complementary error function both CPU backends evaluate GELU with (W. J. Cody's rational
 * approximations; `cpu/` builds its GELU tables from it). Shared by the reference backend and
 * `cpu/`, hence public to `core/` (not exported from `mod.ts`).
 *
 * @module
 */

/**
 * The complementary error function `erfc(x) = 1 − erf(x)` to about 1e-16 relative accuracy, with
 * W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev approximations for the error
 * function", Math. Comp. 23 (1969) 631–637; coefficients of his SPECFUN routine CALERF, 1990):
 * `erf` as a rational function of `x²` for `|x| ≤ 0.46875`, `erfc` as `exp(−x²)·R(|x|)` for
 * `|x| ≤ 4` and `exp(−x²)/|x|·(1/√π − R(1/x²))/…` beyond, with `exp(−x²)` split as
 * `exp(−⌊16x⌋²/256)·exp(−(x − ⌊16x⌋/16)(x + ⌊16x⌋/16))` so the large exponent loses no accuracy;
 * `erfc(−x) = 2 − erfc(x)`. Underflows to 0 for `x ≥ 26.543`. `exp` is `Math.exp` unless a
 * caller passes another of about the same accuracy.
 */
export function erfc(x: number, exp: (x: number) => number = Math.exp): number {
  const y = Math.abs(x);
  if (y <= ERFC_SMALL) return erfcSmall(x);
  let r = erfcTail(y);
  if (r !== 0) {
    const ySq = Math.trunc(y * 16) / 16;
    r *= exp(-ySq * ySq) * exp(-(y - ySq) * (y + ySq));
  }
  return x < 0 ? 2 - r : r;
}

/** Up to this `|x|`, {@linkcode erfc} is `erfcSmall(x)`; beyond, `erfcTail(|x|)` times two exps. */
const ERFC_SMALL = 0.46875;

/** `erfc(x)` for `|x| ≤ 0.46875` (Cody's `erf` as a rational function of `x²`). */
function erfcSmall(x: number): number {
  const z = x * x;
  let num = ERF_A[4] * z, den = z;
  for (let i = 0; i < 3; i++) {
    num = (num + ERF_A[i]) * z;
    den = (den + ERF_B[i]) * z;
  }
  return 1 - x * (num + ERF_A[3]) / (den + ERF_B[3]);
}

/**
 * `erfc(y)` for `y > 0.46875` (or NaN) before its factor `exp(−s²)·exp(−(y − s)(y + s))`,
 * `s = ⌊16y⌋/16`; 0 from 26.543 (where `erfc` underflows).
 */
function erfcTail(y: number): number {
  if (y <= 4) {
    let num = ERFC_C[8] * y, den = y;
    for (let i = 0; i < 7; i++) {
      num = (num + ERFC_C[i]) * y;
      den = (den + ERFC_D[i]) * y;
    }
    return (num + ERFC_C[7]) / (den + ERFC_D[7]);
  }
  if (y >= 26.543) return 0;
  const z = 1 / (y * y);
  let num = ERFC_P[5] * z, den = z;
  for (let i = 0; i < 4; i++) {
    num = (num + ERFC_P[i]) * z;
    den = (den + ERFC_Q[i]) * z;
  }
  return (INV_SQRT_PI - z * (num + ERFC_P[4]) / (den + ERFC_Q[4])) / y;
}

const INV_SQRT_PI = 0.56418958354775628695;
const ERF_A = [
  3.1611237438705656,
  113.864154151050156,
  377.485237685302021,
  3209.37758913846947,
  0.185777706184603153,
];
const ERF_B = [23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062];
const ERFC_C = [
  0.564188496988670089,
  8.88314979438837594,
  66.1191906371416295,
  298.635138197400131,
  881.95222124176909,
  1712.04761263407058,
  2051.07837782607147,
  1230.33935479799725,
  2.15311535474403846e-8,
];
const ERFC_D = [
  15.7449261107098347,
  117.693950891312499,
  537.181101862009858,
  1621.38957456669019,
  3290.79923573345963,
  4362.61909014324716,
  3439.36767414372164,
  1230.33935480374942,
];
const ERFC_P = [
  0.305326634961232344,
  0.360344899949804439,
  0.125781726111229246,
  0.0160837851487422766,
  6.58749161529837803e-4,
  0.0163153871373020978,
];
const ERFC_Q = [
  2.56852019228982242,
  1.87295284992346047,
  0.527905102951428412,
  0.0605183413124413191,
  0.00233520497626869185,
];
