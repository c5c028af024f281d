import { ReferenceBackend } from "./reference_backend.ts";
import { Tape, Variable } from "./autograd.ts";
import * as ops from "./ops.ts";
import { assertEqualArrays } from "./grad_check.ts";
import { assertThrows } from "../reference/testing.ts";

Deno.test("Tape: backward seeds 1, sums gradients reaching a variable twice, then clears", async () => {
  const be = new ReferenceBackend();
  const tape = new Tape(be);
  const x = new Variable(be.tensor(new Float32Array([3]), [1]), { requiresGrad: true, name: "x" });
  // L = x·x + 2x → dL/dx = 2x + 2 = 8.
  const loss = ops.add(tape, ops.mul(tape, x, x), ops.scale(tape, x, 2));
  if (tape.size !== 3) throw new Error(`expected 3 recorded nodes, got ${tape.size}`);
  tape.backward(loss);
  assertEqualArrays(await be.read(x.grad!), [8], "dL/dx");
  assertEqualArrays(await be.read(loss.grad!), [1], "seed");
  if ((tape.size as number) !== 0) throw new Error("the tape should be empty after backward");
});

Deno.test("Tape: recordMany runs one closure with every output's gradient, undefined if none", async () => {
  const be = new ReferenceBackend();
  const tape = new Tape(be);
  const x = new Variable(be.tensor(new Float32Array([1, 2]), [2]), { requiresGrad: true });
  const seen: (number[] | undefined)[][] = [];
  const [a, b, c] = tape.recordMany(
    [be.full([1], 1), be.full([1], 2), be.full([1], 3)],
    [x],
    (gs) => {
      seen.push(gs.map((g) => g && Array.from(be.readF64(g))));
      tape.accumulate(x, be.full([2], 5));
    },
  );
  if (tape.size !== 1) throw new Error(`expected 1 recorded node, got ${tape.size}`);
  // L = 2a + 3c (b unused): the closure runs once, after both consumers.
  tape.backward(ops.add(tape, ops.scale(tape, a, 2), ops.scale(tape, c, 3)));
  if (JSON.stringify(seen) !== JSON.stringify([[[2], undefined, [3]]])) {
    throw new Error(`closure saw ${JSON.stringify(seen)}`);
  }
  assertEqualArrays(await be.read(x.grad!), [5, 5], "dL/dx");
  if (b.grad !== undefined) throw new Error("b should have no gradient");
});

Deno.test("Tape: constants and non-recording tapes build no graph", () => {
  const be = new ReferenceBackend();
  const c = new Variable(be.full([2], 1));
  const tape = new Tape(be);
  const y = ops.mul(tape, c, c);
  if (y.requiresGrad || tape.size !== 0) throw new Error("a constant expression was recorded");
  const off = new Tape(be, { recording: false });
  const x = new Variable(be.full([1], 2), { requiresGrad: true });
  const z = ops.mul(off, x, x);
  if (z.requiresGrad || off.size !== 0) throw new Error("a non-recording tape recorded");
  assertThrows(() => off.backward(z), Error, "recording: false");
});

Deno.test("Tape: backward rejects a non-scalar loss and a loss without gradient", () => {
  const be = new ReferenceBackend();
  const tape = new Tape(be);
  const x = new Variable(be.full([2], 1), { requiresGrad: true });
  assertThrows(
    () => tape.backward(ops.scale(tape, x, 2)),
    RangeError,
    "shape [1], got [2]",
  );
  const c = new Variable(be.full([1], 1));
  assertThrows(
    () => tape.backward(ops.scale(tape, c, 2)),
    Error,
    "does not depend",
  );
});

Deno.test("Tape: accumulate rejects a gradient of the wrong shape, naming the variable", () => {
  const be = new ReferenceBackend();
  const tape = new Tape(be);
  const x = new Variable(be.full([2, 3], 1), { requiresGrad: true, name: "w" });
  assertThrows(() => tape.accumulate(x, be.full([3, 2], 1)), RangeError, "gradient of w");
});
