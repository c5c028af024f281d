/**
 * The GPU test fixture never lets a test skip: without an adapter every use rejects with the
 * error that opening raised.
 *
 * @module
 */

import { gpuFixture } from "./testing.ts";
import { WebGpuUnavailableError } from "./runtime.ts";

Deno.test("gpuFixture: a failed open rejects every use with its error (no skip)", async () => {
  let opened = 0;
  const fixture = gpuFixture("fixture test", () => {
    opened++;
    return Promise.reject(new WebGpuUnavailableError("no adapter (simulated)"));
  }, () => "none");
  for (let i = 0; i < 2; i++) {
    const error = await fixture().then(() => null, (e: unknown) => e);
    if (!(error instanceof WebGpuUnavailableError)) {
      throw new Error(`expected WebGpuUnavailableError, got ${error}`);
    }
  }
  if (opened !== 1) throw new Error(`expected one open attempt, got ${opened}`);
});

Deno.test("gpuFixture: opens once and shares the resource", async () => {
  let opened = 0;
  const fixture = gpuFixture("fixture test", () => Promise.resolve({ n: ++opened }), () => "fake");
  const [a, b] = [await fixture(), await fixture()];
  if (a !== b || opened !== 1) throw new Error(`expected one shared resource, opened ${opened}`);
});
