/**
 * The `vec4` copy kernel moves bits unchanged (NaN payloads, −0, subnormals) for counts that are
 * not a multiple of the workgroup, leaves the destination past `quads` alone, and refuses bad sizes.
 *
 * @module
 */

import { openTestRuntime } from "../testing.ts";
import { encodeCopyVec4 } from "./copy.ts";
import { assertEqualArrays, assertThrows } from "../../reference/testing.ts";

const rt = await openTestRuntime("copy_test"); // rejects (fails every test) without an adapter

Deno.test("copy vec4: bit-exact for the first quads, destination untouched after", async () => {
  for (const quads of [1, 255, 257, 1000]) {
    const words = quads * 4 + 4;
    const src = Uint32Array.from({ length: words }, (_, i) => (i * 0x9e3779b9) >>> 0);
    src.set([0x7fc00001, 0xffffffff, 0x80000000, 0x00000001]); // NaN payloads, -0, a subnormal
    const dstInit = new Uint32Array(words).fill(0xdeadbeef);
    const s = rt.upload(src), d = rt.upload(dstInit);
    encodeCopyVec4(rt, s, d, quads);
    const out = new Uint32Array(await rt.read(d, 4 * words));
    assertEqualArrays(out.subarray(0, quads * 4), src.subarray(0, quads * 4), `copied, ${quads}`);
    assertEqualArrays(out.subarray(quads * 4), dstInit.subarray(quads * 4), `after, ${quads}`);
    rt.free(s);
    rt.free(d);
  }
});

Deno.test("copy vec4: refuses a bad count or a short buffer", () => {
  const small = rt.alloc(16);
  assertThrows(() => encodeCopyVec4(rt, small, small, 1.5), RangeError, "got 1.5");
  const tooMany = small.size / 16 + 1; // pooled buffers are rounded up
  assertThrows(() => encodeCopyVec4(rt, small, small, tooMany), RangeError, "src holds");
  rt.free(small);
});

globalThis.addEventListener("unload", () => rt.destroy());
