/**
 * The fused causal attention backward kernels (dQ, then dK/dV) against the reference backend's
 * float64 oracle: all three gradients within the bounds of SPEC §10.7, computed from each case's
 * data (the kernels consume the GPU forward's own `out` and `lse`, whose errors the bounds carry),
 * on shapes whose `T` is not a multiple of any tile, several slices, and the presets' head widths.
 *
 * @module
 */

import { openTestRuntime } from "../testing.ts";
import {
  assertWithinBounds,
  attentionBounds,
  attentionData,
  attentionReference,
} from "../attention_testing.ts";
import { encodeAttentionForward } from "./attention_forward.ts";
import { encodeAttentionBackward } from "./attention_backward.ts";
import { attentionTileRows } from "./_attention.ts";

const rt = await openTestRuntime("attention_backward_test"); // rejects without an adapter

/** Runs the forward and backward kernels on one case and checks `dq`, `dk`, `dv`. */
async function check(bh: number, T: number, hd: number, seed: number, qScale = 1): Promise<void> {
  const data = attentionData({ bh, T, hd }, seed, qScale, attentionTileRows(rt, hd, 2));
  const [q, k, v, dOut] = [data.q, data.k, data.v, data.dOut].map((x) => rt.upload(x));
  const { out, lse } = encodeAttentionForward(rt, [q, k, v], data, data.scale);
  const grads = encodeAttentionBackward(rt, { q, k, v, out, lse }, dOut, data, data.scale);
  const bytes = 4 * bh * T * hd;
  const [dq, dk, dv] = await Promise.all(
    [grads.dq, grads.dk, grads.dv].map(async (b) => new Float32Array(await rt.read(b, bytes))),
  );
  for (const b of [q, k, v, dOut, out, lse, grads.dq, grads.dk, grads.dv]) rt.free(b);
  const ref = await attentionReference(data), bounds = attentionBounds(data);
  const label = `bh=${bh} T=${T} hd=${hd} qScale=${qScale}`;
  assertWithinBounds(dq, ref.dq, bounds.dq, hd, `${label} dq`);
  assertWithinBounds(dk, ref.dk, bounds.dk, hd, `${label} dk`);
  assertWithinBounds(dv, ref.dv, bounds.dv, hd, `${label} dv`);
}

Deno.test("attention backward: one row, odd head dimensions, T not a multiple of the tiles", async () => {
  await check(1, 1, 4, 11);
  await check(3, 5, 5, 12);
  await check(2, 37, 7, 13);
  await check(4, 70, 8, 14); // the tiny preset's head width, two row tiles
});

Deno.test("attention backward: model head widths 16, 32, 64 over several tiles", async () => {
  await check(2, 33, 16, 15);
  await check(3, 129, 32, 16); // the mini preset's head width, three row tiles
  await check(2, 100, 64, 17); // GPT-2's head width
});

Deno.test("attention backward: a sharp softmax (scores up to ±16)", async () => {
  await check(2, 90, 16, 18, 16);
});
