/**
 * Assertions shared by the data pipeline's tests.
 *
 * @module
 */

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

export function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  assert(a === e, `${what}: expected ${e}, got ${a}`);
}

export function assertThrows(
  fn: () => unknown,
  errorClass: abstract new (...args: never[]) => Error,
  includes: string,
): void {
  try {
    fn();
  } catch (e) {
    assert(e instanceof errorClass, `expected ${errorClass.name}, got ${e}`);
    assert(
      (e as Error).message.includes(includes),
      `expected message containing "${includes}", got "${(e as Error).message}"`,
    );
    return;
  }
  throw new Error(`expected ${errorClass.name} containing "${includes}", nothing was thrown`);
}

export async function assertRejects(
  fn: () => Promise<unknown>,
  errorClass: abstract new (...args: never[]) => Error,
  includes: string,
): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof errorClass, `expected ${errorClass.name}, got ${e}`);
    assert(
      (e as Error).message.includes(includes),
      `expected message containing "${includes}", got "${(e as Error).message}"`,
    );
    return;
  }
  throw new Error(`expected ${errorClass.name} containing "${includes}", nothing was thrown`);
}
