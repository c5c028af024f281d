/**
 * The head split/merge kernels against the reference backend's `splitHeads`/`mergeHeads`: values
 * moved bit for bit (±0, subnormals, ±Inf), for shapes with one sequence, one
 * head, a head width of 1, counts that are not a multiple of the workgroup, 1 to 7 parts; the
 * merge is the split's inverse.
 *
 * @module
 */

import { createGpuBackend } from "../backend.ts";
import { ReferenceBackend } from "../../core/reference_backend.ts";
import { mixed, random } from "../testing.ts";
import { assertEqualArrays, assertThrows } from "../../reference/testing.ts";
import { headsSpec, MAX_HEAD_PARTS } from "./heads.ts";

const gpu = await createGpuBackend(); // rejects (fails every test) without an adapter
const ref = new ReferenceBackend();

/** `[batch, T, heads, hd, parts]` */
const SHAPES: [number, number, number, number, number][] = [
  [1, 1, 1, 1, 1],
  [2, 5, 3, 4, 3],
  [3, 7, 2, 1, 3],
  [1, 33, 4, 5, 2],
  [2, 17, 1, 9, 7],
  [4, 9, 3, 8, 1],
];

Deno.test("splitHeads and mergeHeads equal the reference bit for bit", async () => {
  for (const [batch, T, heads, hd, parts] of SHAPES) {
    const label = `B ${batch}, T ${T}, h ${heads}, hd ${hd}, P ${parts}`;
    const shape = [batch * T, parts * heads * hd];
    const data = mixed(random(batch * 31 + T), shape[0] * shape[1], true);
    const dims = { batch, heads, parts };
    const want = ref.splitHeads(ref.tensor(data, shape), dims);
    const got = gpu.splitHeads(gpu.tensor(data, shape), dims);
    const gotParts = await gpu.readMany(got);
    for (let i = 0; i < parts; i++) {
      if (got[i].shape.join() !== `${batch * heads},${T},${hd}`) {
        throw new Error(`${label}: part ${i} has shape [${got[i].shape}]`);
      }
      assertEqualArrays(gotParts[i], await ref.read(want[i]), `${label}: split part ${i}`);
    }
    const merged = gpu.mergeHeads(got, batch);
    assertEqualArrays(await gpu.read(merged), data, `${label}: merge(split(x)) = x`);
    assertEqualArrays(
      await gpu.read(merged),
      await ref.read(ref.mergeHeads(want, batch)),
      `${label}: merge`,
    );
    gpu.release();
    ref.release();
  }
});

Deno.test("splitHeads and mergeHeads refuse shapes that do not divide", () => {
  const x = gpu.full([6, 12]);
  assertThrows(() => gpu.splitHeads(x, { batch: 4, heads: 2, parts: 3 }), RangeError, "B = 4");
  assertThrows(() => gpu.splitHeads(x, { batch: 2, heads: 5, parts: 3 }), RangeError, "h = 5");
  assertThrows(
    () => gpu.splitHeads(x, { batch: 2, heads: 1, parts: 8 }),
    RangeError,
    "got 2, 1, 8",
  );
  const a = gpu.full([4, 3, 2]), b = gpu.full([4, 3, 3]);
  assertThrows(() => gpu.mergeHeads([a, b], 2), RangeError);
  assertThrows(() => gpu.mergeHeads([a], 3), RangeError, "B = 3");
  assertThrows(() => gpu.mergeHeads([], 1), RangeError, "got 0");
  assertThrows(() => headsSpec("split", MAX_HEAD_PARTS + 1), RangeError, "got 8");
  gpu.release();
});

globalThis.addEventListener("unload", () => gpu.runtime.destroy());
