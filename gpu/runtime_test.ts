/**
 * The runtime's uniform arenas: every dispatch sees its own parameter block, across automatic
 * submits, several arenas, a flush that recycles them mid-way, blocks of different sizes, and a
 * read-back in between; and steady-state steps create no new arena.
 *
 * @module
 */

import { openTestRuntime } from "./testing.ts";
import { assertEqualArrays, assertThrows } from "../reference/testing.ts";

const rt = await openTestRuntime("runtime_test"); // rejects (fails every test) without an adapter

/** Writes `p.words[0] · 3 + p.words[last]` to `out[p.words[0]]`; the block is `words` u32 long. */
const spec = (words: number) => ({
  key: `test-uniform-${words}`,
  code: `struct Params { w: array<vec4<u32>, ${words / 4}> }
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> p: Params;
@compute @workgroup_size(1)
fn main() {
  let i = p.w[0].x;
  out[i] = i * 3u + p.w[${words / 4 - 1}].w;
}
`,
});

Deno.test("uniform arenas: each dispatch reads its own block across submits, arenas and flushes", async () => {
  const n = 1500, out = rt.alloc(4 * n);
  const want = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const words = [4, 16, 96][i % 3]; // 16 B, 64 B and 384 B blocks (over one alignment unit)
    const block = new Uint32Array(words);
    block[0] = i;
    block[words - 1] = 7 + (i % 5);
    rt.dispatch(spec(words), [out], [1], block);
    want[i] = i * 3 + 7 + (i % 5);
    if (i === 700) rt.flush(); // recycles the arenas of the first 701 dispatches
    if (i === 1100) await rt.read(out, 4); // a read-back flushes too
  }
  assertEqualArrays(new Uint32Array(await rt.read(out, 4 * n)), want, "out");
  rt.free(out);
});

Deno.test("uniform arenas: a repeated step creates no new buffer", async () => {
  const out = rt.alloc(4 * 600);
  const step = async () => {
    for (let i = 0; i < 600; i++) rt.dispatch(spec(4), [out], [1], new Uint32Array([i, 0, 0, 1]));
    await rt.read(out, 4);
  };
  await step();
  const before = rt.poolMisses.uniform;
  for (let s = 0; s < 3; s++) await step();
  if (rt.poolMisses.uniform !== before) {
    throw new Error(
      `uniform buffers created after the first step: ${rt.poolMisses.uniform - before}`,
    );
  }
  rt.free(out);
});

Deno.test("uniform arenas: a block over an arena's size is refused, naming its size", () => {
  const out = rt.alloc(16);
  assertThrows(
    () => rt.dispatch(spec(4), [out], [1], new Uint32Array(16385)),
    RangeError,
    "65540 bytes",
  );
  rt.free(out);
});

globalThis.addEventListener("unload", () => rt.destroy());
