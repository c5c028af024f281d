/**
 * The software-adapter row kernels (one invocation per row, `_serial_reduce.ts`; cross-entropy
 * also through a flat texture, `_flat_texture.ts`) against the workgroup-per-row kernels they
 * replace on llvmpipe: same reductions in the same order, so the results must be equal bit for
 * bit. Every kernel is dispatched directly, so the comparison runs on any adapter. Shapes: rows
 * not a multiple of the 64-row workgroup, widths above the workgroup kernels' thread counts (each
 * leaf folds several values), a width of 1.
 *
 * @module
 */

import { openTestRuntime } from "../testing.ts";
import { grid1d, type KernelSpec } from "../runtime.ts";
import { packParams } from "./_params.ts";
import { rowGrid } from "./_serial_reduce.ts";
import { dispatchWithFlatTextures } from "./_flat_texture.ts";
import { causalSoftmaxSpec, softmaxBackwardSpec } from "./softmax.ts";
import { layerNormBackwardSpec, layerNormForwardSpec } from "./layernorm.ts";
import {
  crossEntropyBackwardSpec,
  crossEntropyRowsSpec,
  crossEntropyTextureSpec,
} from "./cross_entropy.ts";
import { seededFloats } from "../../reference/testing.ts";

const rt = await openTestRuntime("serial_rows_test"); // rejects (fails every test) without an adapter

/** At least one element (a zero-length input still needs a buffer to bind). */
const random = (n: number, seed: number, scale: number, shift = 0) =>
  n === 0 ? new Float32Array(1) : seededFloats(n, seed, (u) => (u - 0.5 + shift) * scale);

const serialGrid = (rows: number) => rowGrid(true, rows);

/** Runs the workgroup and the serial dispatch into fresh outputs and compares them bitwise. */
async function same(
  label: string,
  outputs: number[],
  run: (serial: boolean, outs: GPUBuffer[]) => void,
): Promise<void> {
  const results: Uint32Array[][] = [];
  for (const serial of [false, true]) {
    const outs = outputs.map((n) => rt.alloc(4 * Math.max(1, n)));
    run(serial, outs);
    const read = await rt.readMany(outs.map((buffer, i) => ({ buffer, bytes: 4 * outputs[i] })));
    results.push(read.map((r) => new Uint32Array(r)));
    outs.forEach((b) => rt.free(b));
  }
  results[0].forEach((want, o) => {
    const got = results[1][o];
    for (let i = 0; i < want.length; i++) {
      if (want[i] !== got[i]) {
        const f = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0];
        throw new Error(`${label}: output ${o}[${i}] serial ${f(got[i])} ≠ ${f(want[i])}`);
      }
    }
  });
}

function dispatch(spec: KernelSpec, buffers: GPUBuffer[], groups: number[], params: Uint32Array) {
  rt.dispatch(spec, buffers, groups, params);
}

Deno.test("serial causal softmax and softmax backward equal the workgroup kernels", async () => {
  for (const [batch, T] of [[3, 7], [2, 64], [1, 150], [5, 1]]) {
    const rows = batch * T;
    const s = rt.upload(random(rows * T, 1 + T, 8));
    const dp = rt.upload(random(rows * T, 2 + T, 1));
    const params = packParams([rows, T], [0.37]);
    await same(
      `causal softmax ${batch}×${T}`,
      [rows * T],
      (serial, [out]) =>
        dispatch(causalSoftmaxSpec(serial), [s, out], rowGrid(serial, rows), params),
    );
    for (const causal of [0, 1]) {
      await same(
        `softmax backward ${rows}×${T}${causal ? ", causal, scaled" : ""}`,
        [rows * T],
        (serial, [out]) =>
          dispatch(
            softmaxBackwardSpec(serial),
            [s, dp, out],
            rowGrid(serial, rows),
            packParams([rows, T, causal], [causal ? 0.37 : 1]),
          ),
      );
    }
    [s, dp].forEach((b) => rt.free(b));
  }
});

Deno.test("serial LayerNorm forward and backward equal the workgroup kernels", async () => {
  for (const [rows, d] of [[1, 1], [3, 5], [70, 128], [9, 300]]) {
    const x = rt.upload(random(rows * d, 3 + d, 4, 0.2)), dy = rt.upload(random(rows * d, 4, 1));
    const w = rt.upload(random(d, 5, 2)), b = rt.upload(random(d, 6, 1));
    const mean = rt.upload(random(rows, 7, 1)), rstd = rt.upload(random(rows, 8, 1, 1));
    const grid = (serial: boolean) => rowGrid(serial, rows);
    await same(`layerNorm ${rows}×${d}`, [rows * d, rows, rows], (serial, [y, mu, rs]) =>
      dispatch(
        layerNormForwardSpec(serial),
        [x, w, b, y, mu, rs],
        grid(serial),
        packParams([rows, d], [1e-5]),
      ));
    const r = rt.upload(random(rows * d, 10, 3));
    await same(`layerNorm of x + r ${rows}×${d}`, [rows * d, rows * d, rows, rows], (
      serial,
      [s, y, mu, rs],
    ) =>
      dispatch(
        layerNormForwardSpec(serial, true),
        [x, r, w, b, s, y, mu, rs],
        grid(serial),
        packParams([rows, d], [1e-5]),
      ));
    rt.free(r);
    await same(`layerNorm backward ${rows}×${d}`, [rows * d], (serial, [dx]) =>
      dispatch(
        layerNormBackwardSpec(serial),
        [x, w, mean, rstd, dy, dx],
        grid(serial),
        packParams([rows, d]),
      ));
    const acc = rt.upload(random(rows * d, 9, 1));
    await same(`layerNorm backward, added ${rows}×${d}`, [rows * d], (serial, [dx]) =>
      dispatch(
        layerNormBackwardSpec(serial, true),
        [x, w, mean, rstd, dy, acc, dx],
        grid(serial),
        packParams([rows, d]),
      ));
    [x, dy, w, b, mean, rstd, acc].forEach((buf) => rt.free(buf));
  }
});

Deno.test("serial and texture cross-entropy equal the workgroup kernels", async () => {
  for (const [rows, C] of [[1, 4], [5, 7], [70, 512], [3, 1000]]) {
    const logits = random(rows * C, 9 + C, 12);
    logits[0] = 60; // a dominant logit: large max subtraction
    const z = rt.upload(logits);
    const targets = rt.upload(new Int32Array(rows).map((_, r) => (r * 37 + 3) % C));
    const dLoss = rt.upload(new Float32Array([1.75]));
    const params = packParams([rows, C]);
    const variants: ("serial" | "texture")[] = C % 4 === 0 ? ["serial", "texture"] : ["serial"];
    for (const variant of variants) {
      const run = (backward: boolean, serial: boolean, outs: GPUBuffer[]) => {
        const buffers = backward ? [targets, dLoss, ...outs] : [targets, ...outs];
        if (!serial) {
          const spec = backward ? crossEntropyBackwardSpec() : crossEntropyRowsSpec();
          dispatch(spec, [z, ...buffers], grid1d(rows), params);
        } else if (variant === "serial") {
          const spec = backward ? crossEntropyBackwardSpec(true) : crossEntropyRowsSpec(true);
          dispatch(spec, [z, ...buffers], serialGrid(rows), params);
        } else {
          dispatchWithFlatTextures(rt, {
            spec: crossEntropyTextureSpec(backward),
            textures: [{ buffer: z, texels: (rows * C) / 4 }],
            buffers,
            params,
            workgroups: serialGrid(rows),
          });
        }
      };
      await same(
        `cross-entropy rows ${variant} ${rows}×${C}`,
        [rows, rows],
        (serial, outs) => run(false, serial, outs),
      );
      await same(
        `cross-entropy backward ${variant} ${rows}×${C}`,
        [rows * C],
        (serial, outs) => run(true, serial, outs),
      );
    }
    [z, targets, dLoss].forEach((b) => rt.free(b));
  }
});

globalThis.addEventListener("unload", () => rt.destroy());
