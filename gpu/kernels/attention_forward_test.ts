/**
 * The fused causal attention forward kernel against the reference backend's float64 oracle: the
 * output and the per-row log-sum-exp within the bounds of SPEC §10.7, computed from each case's
 * data, on the shared cases of `attention_testing.ts` (`T` not a multiple of any tile, several
 * slices, odd head widths and the presets' ones, a sharp softmax).
 *
 * @module
 */

import { openTestRuntime } from "../testing.ts";
import { assertAttentionParity, ATTENTION_CASES, attentionData } from "../attention_testing.ts";
import { encodeAttentionForward } from "./attention_forward.ts";
import { attentionTileRows } from "./attention_common.ts";

const rt = await openTestRuntime("attention_forward_test"); // rejects without an adapter

Deno.test("attention forward: out and lse on every shared case", async () => {
  for (const { bh, T, hd, seed, qScale } of ATTENTION_CASES) {
    const data = attentionData({ bh, T, hd }, seed, qScale, attentionTileRows(rt, hd, 2));
    const [q, k, v] = [data.q, data.k, data.v].map((x) => rt.upload(x));
    const { out, lse } = encodeAttentionForward(rt, [q, k, v], data, data.scale);
    const actual = {
      out: new Float32Array(await rt.read(out, 4 * bh * T * hd)),
      lse: new Float32Array(await rt.read(lse, 4 * bh * T)),
    };
    for (const buffer of [q, k, v, out, lse]) rt.free(buffer);
    await assertAttentionParity(actual, data, `bh=${bh} T=${T} hd=${hd} qScale=${qScale}`);
  }
});

Deno.test("attention forward: sizes and scale are checked", () => {
  const buf = rt.alloc(16);
  const bad = [
    { bh: 1, T: 1, hd: 0 },
    { bh: -1, T: 1, hd: 4 },
    { bh: 1, T: 1.5, hd: 4 },
  ];
  for (const dims of bad) {
    let threw = false;
    try {
      encodeAttentionForward(rt, [buf, buf, buf], dims, 1);
    } catch (e) {
      threw = e instanceof RangeError && /fused attention forward/.test(e.message);
    }
    if (!threw) throw new Error(`expected a RangeError for ${JSON.stringify(dims)}`);
  }
  rt.free(buf);
});
