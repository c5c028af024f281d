/**
 * The equality assertion of the data pipeline's tests: JSON equality, which compares typed arrays,
 * plain arrays and metadata objects by value (the other assertions are `reference/testing.ts`).
 *
 * @module
 */

import { assert } from "../../reference/testing.ts";

/** Asserts that `actual` and `expected` have the same JSON text; `what` names the quantity. */
export function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  assert(a === e, `${what}: expected ${e}, got ${a}`);
}
