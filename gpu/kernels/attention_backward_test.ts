/**
 * The fused causal attention backward kernels (dQ, then dK/dV) against the reference backend's
 * float64 oracle: all three gradients within the bounds of SPEC §10.7, computed from each case's
 * data (the kernels consume the GPU forward's own `out` and `lse`, whose errors the bounds carry),
 * on the shared cases of `attention_testing.ts`, with the dK/dV pass joint and split.
 *
 * @module
 */

import { openTestRuntime } from "../testing.ts";
import { assertAttentionParity, ATTENTION_CASES, attentionData } from "../attention_testing.ts";
import { encodeAttentionForward } from "./attention_forward.ts";
import { encodeAttentionBackward } from "./attention_backward.ts";
import { attentionTileRows } from "./attention_common.ts";

const rt = await openTestRuntime("attention_backward_test"); // rejects without an adapter
const CASES = ATTENTION_CASES.flatMap((c) =>
  (["joint", "split"] as const).map((p) => [c, p] as const)
);

Deno.test("attention backward: dq, dk, dv on every shared case, joint and split key passes", async () => {
  for (const [{ bh, T, hd, seed, qScale }, keyPass] of CASES) {
    const data = attentionData({ bh, T, hd }, seed, qScale, attentionTileRows(rt, hd, 2));
    const [q, k, v, dOut] = [data.q, data.k, data.v, data.dOut].map((x) => rt.upload(x));
    const { out, lse } = encodeAttentionForward(rt, [q, k, v], data, data.scale);
    const saved = { q, k, v, out, lse };
    const grads = encodeAttentionBackward(rt, saved, dOut, data, data.scale, keyPass);
    const read = async (b: GPUBuffer) => new Float32Array(await rt.read(b, 4 * bh * T * hd));
    const actual = { dq: await read(grads.dq), dk: await read(grads.dk), dv: await read(grads.dv) };
    for (const b of [q, k, v, dOut, out, lse, grads.dq, grads.dk, grads.dv]) rt.free(b);
    await assertAttentionParity(actual, data, `${keyPass} bh=${bh} T=${T} hd=${hd} ×${qScale}`);
  }
});
