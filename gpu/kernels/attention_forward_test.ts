/**
 * The fused causal attention forward kernel against the reference backend's float64 oracle: the
 * output and the per-row log-sum-exp within the bounds of SPEC §10.7, computed from each case's
 * data, on shapes whose `T` is not a multiple of any tile, several slices, and head dimensions of
 * the model presets (8, 16, 32, 64) and odd ones.
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
import { attentionTileRows } from "./_attention.ts";

const rt = await openTestRuntime("attention_forward_test"); // rejects without an adapter

/** Runs the forward kernel on one case and checks `out` and `lse`. */
async function check(bh: number, T: number, hd: number, seed: number, qScale = 1): Promise<void> {
  const data = attentionData({ bh, T, hd }, seed, qScale, attentionTileRows(rt, hd, 2));
  const [q, k, v] = [data.q, data.k, data.v].map((x) => rt.upload(x));
  const { out, lse } = encodeAttentionForward(rt, [q, k, v], data, data.scale);
  const gpuOut = new Float32Array(await rt.read(out, 4 * bh * T * hd));
  const gpuLse = new Float32Array(await rt.read(lse, 4 * bh * T));
  for (const buffer of [q, k, v, out, lse]) rt.free(buffer);
  const ref = await attentionReference(data), bounds = attentionBounds(data);
  const label = `bh=${bh} T=${T} hd=${hd} qScale=${qScale}`;
  assertWithinBounds(gpuOut, ref.out, bounds.out, hd, `${label} out`);
  assertWithinBounds(gpuLse, ref.lse, bounds.lse, 1, `${label} lse`);
}

Deno.test("attention forward: one row, odd head dimensions, T not a multiple of the tiles", async () => {
  await check(1, 1, 4, 1);
  await check(3, 5, 5, 2);
  await check(2, 37, 7, 3);
  await check(4, 70, 8, 4); // the tiny preset's head width, two row tiles
});

Deno.test("attention forward: model head widths 16, 32, 64 over several key tiles", async () => {
  await check(2, 33, 16, 5);
  await check(3, 129, 32, 6); // the mini preset's head width, three row tiles
  await check(2, 100, 64, 7); // GPT-2's head width
});

Deno.test("attention forward: a sharp softmax (scores up to ±16) rescales across tiles", async () => {
  await check(2, 90, 16, 8, 16);
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
