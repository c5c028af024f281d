/**
 * The `Matrix` value every pruning function and estimator takes and returns, and the input checks
 * they share.
 *
 * @module
 */

/** A row-major `float32` matrix of shape `[rows, cols]` (SPEC §0). */
export interface Matrix {
  /** Number of rows. */
  rows: number;
  /** Number of columns (the contiguous dimension; N:M groups run along it). */
  cols: number;
  /** `rows * cols` values, row-major. */
  data: Float32Array;
}

/**
 * Makes a matrix, copying `data` (a plain array or typed array) into a fresh `Float32Array`, or
 * zero-filled when `data` is omitted.
 *
 * @param rows Number of rows (a non-negative integer).
 * @param cols Number of columns (a non-negative integer).
 * @param data Optional values, row-major; must hold exactly `rows * cols` numbers.
 * @returns The matrix.
 * @throws {RangeError} If a dimension is not an integer in `[0, 2^31]`, `rows·cols > 2^31`, or
 * `data` has the wrong length.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * const m = matrix(1, 4, [0.1, -3, 2, 0.5]);
 * if (m.data[1] !== -3) throw new Error("unexpected");
 * ```
 */
export function matrix(rows: number, cols: number, data?: ArrayLike<number>): Matrix {
  assertDim(rows, "rows", "create a matrix");
  assertDim(cols, "cols", "create a matrix");
  assertSize(rows, cols, "create a matrix");
  if (data === undefined) return { rows, cols, data: new Float32Array(rows * cols) };
  if (data.length !== rows * cols) {
    throw new RangeError(
      `Cannot create a matrix: data.length must be rows*cols = ${rows}*${cols} = ${
        rows * cols
      }, got ${data.length}`,
    );
  }
  return { rows, cols, data: Float32Array.from(data) };
}

/**
 * The largest matrix, in elements, and the largest dimension: 2^31, what one GPU buffer binding
 * holds. Bounding each dimension, not only the product, keeps `rows = 2^52, cols = 0` from
 * driving a loop over 2^52 empty rows.
 */
export const MAX_MATRIX_ELEMENTS: number = 2 ** 31;

function assertDim(n: number, name: string, action: string): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_MATRIX_ELEMENTS) {
    throw new RangeError(
      `Cannot ${action}: ${name} must be an integer in [0, 2^31], got ${n}`,
    );
  }
}

function assertSize(rows: number, cols: number, action: string): void {
  if (rows * cols > MAX_MATRIX_ELEMENTS) {
    throw new RangeError(
      `Cannot ${action}: rows·cols must be at most 2^31 elements, got ${rows}·${cols}`,
    );
  }
}

/**
 * Checks that `m` is a well-formed {@linkcode Matrix}: integer dimensions, a `Float32Array` of
 * exactly `rows * cols` values.
 *
 * @param m The value to check.
 * @param action What the caller was doing, for the message ("prune to 2:4").
 * @throws {TypeError} If `m` is not a matrix object or its data is not a `Float32Array`.
 * @throws {RangeError} If a dimension is not an integer in `[0, 2^31]`, `rows·cols > 2^31`, or
 * `data.length !== rows * cols`.
 */
export function assertMatrix(m: Matrix, action: string): void {
  if (m === null || typeof m !== "object") {
    throw new TypeError(`Cannot ${action}: expected a Matrix {rows, cols, data}, got ${m}`);
  }
  if (!(m.data instanceof Float32Array)) {
    throw new TypeError(
      `Cannot ${action}: matrix data must be a Float32Array, got ${
        (m.data as unknown as object)?.constructor?.name ?? typeof m.data
      }`,
    );
  }
  assertDim(m.rows, "rows", action);
  assertDim(m.cols, "cols", action);
  assertSize(m.rows, m.cols, action);
  if (m.data.length !== m.rows * m.cols) {
    throw new RangeError(
      `Cannot ${action}: data.length must be rows*cols = ${m.rows}*${m.cols} = ${
        m.rows * m.cols
      }, got ${m.data.length}`,
    );
  }
}

/**
 * Checks that the row length is a multiple of the group size `m` (SPEC §0: no truncation, no
 * padding).
 *
 * @throws {RangeError} Naming the row length and the group size.
 */
export function assertGroupedCols(x: Matrix, m: number, action: string): void {
  if (x.cols % m !== 0) {
    throw new RangeError(
      `Cannot ${action}: the row length must be a multiple of ${m}, got ${x.cols}`,
    );
  }
}

/**
 * Checks that no value is NaN (SPEC §0: pruning functions reject NaN; ±Inf is a magnitude).
 *
 * @throws {RangeError} Naming the first NaN's row and column.
 */
export function assertNoNaN(x: Matrix, action: string): void {
  const d = x.data;
  for (let i = 0; i < d.length; i++) {
    if (Number.isNaN(d[i])) {
      const r = Math.floor(i / x.cols), c = i % x.cols;
      throw new RangeError(`Cannot ${action}: NaN at row ${r}, column ${c} (flat index ${i})`);
    }
  }
}

/**
 * Checks that `mask` is a `Uint8Array` of 0/1 values with `expectedLength` entries.
 *
 * @throws {TypeError} If the mask is not a `Uint8Array`.
 * @throws {RangeError} If its length is wrong or an entry is neither 0 nor 1.
 */
export function assertMask(mask: Uint8Array, expectedLength: number, action: string): void {
  if (!(mask instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${action}: a mask must be a Uint8Array of 0/1`);
  }
  if (mask.length !== expectedLength) {
    throw new RangeError(
      `Cannot ${action}: the mask must have ${expectedLength} entries, got ${mask.length}`,
    );
  }
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] > 1) {
      throw new RangeError(`Cannot ${action}: mask entries must be 0 or 1, got ${mask[i]} at ${i}`);
    }
  }
}

/**
 * Checks that two matrices have the same shape.
 *
 * @throws {RangeError} Naming both shapes.
 */
export function assertSameShape(a: Matrix, b: Matrix, action: string): void {
  if (a.rows !== b.rows || a.cols !== b.cols) {
    throw new RangeError(
      `Cannot ${action}: shapes differ, [${a.rows}, ${a.cols}] vs [${b.rows}, ${b.cols}]`,
    );
  }
}

/**
 * Checks that every value is finite (no NaN, no ±Inf), for functions where an infinity would turn
 * into NaN (β, MVUE, masked decay, gated activations, FP8 scaling).
 *
 * @param x The matrix.
 * @param action What the caller was doing, for the message.
 * @param what What the values are ("gradients", "the weight"), for the message.
 * @throws {RangeError} Naming the first non-finite value with its row and column.
 */
export function assertFinite(x: Matrix, action: string, what = "values"): void {
  const d = x.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      const r = Math.floor(i / x.cols), c = i % x.cols;
      throw new RangeError(
        `Cannot ${action}: ${what} must be finite, got ${
          d[i]
        } at row ${r}, column ${c} (flat index ${i})`,
      );
    }
  }
}
