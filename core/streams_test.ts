import {
  dropoutStream,
  initStream,
  MAX_DROPOUT_SITES,
  MAX_SPARSE_LAYERS,
  MAX_STEPS,
  mvueStream,
} from "./streams.ts";
import { assertThrows } from "../reference/testing.ts";

Deno.test("streams: documented layout, no two uses share a stream", () => {
  if (mvueStream(0, 0) !== 4096 || mvueStream(0, 0, "weight") !== 4096 + 1024) {
    throw new Error("MVUE layout");
  }
  if (dropoutStream(2, 5) !== 3 * 4096 + 2048 + 5 || initStream(17) !== 17) {
    throw new Error("dropout/init layout");
  }
  const seen = new Map<number, string>();
  const add = (s: number, what: string) => {
    if (seen.has(s)) throw new Error(`${what} and ${seen.get(s)} share stream ${s}`);
    seen.set(s, what);
  };
  for (let p = 0; p < 4096; p += 97) add(initStream(p), `init ${p}`);
  for (const step of [0, 1, 2, MAX_STEPS - 1]) {
    for (const layer of [0, 1, MAX_SPARSE_LAYERS - 1]) {
      add(mvueStream(step, layer), `mvue ${step}/${layer}`);
      add(mvueStream(step, layer, "weight"), `mvue-w ${step}/${layer}`);
    }
    for (const site of [0, 1, MAX_DROPOUT_SITES - 1]) {
      add(dropoutStream(step, site), `drop ${step}/${site}`);
    }
  }
  if (mvueStream(MAX_STEPS - 1, 0) + 4095 >= 2 ** 32) throw new Error("streams overflow 32 bits");
});

Deno.test("streams: out-of-range steps, layers and sites are RangeErrors", () => {
  const cases: [() => number, string][] = [
    [() => mvueStream(-1, 0), "step must be an integer in [0, 1048575), got -1"],
    [() => mvueStream(MAX_STEPS, 0), "step must be an integer"],
    [() => mvueStream(0, 1024), "sparse-layer index must be an integer in [0, 1024), got 1024"],
    [() => dropoutStream(0, 2048), "dropout site must be an integer in [0, 2048), got 2048"],
    [() => initStream(4096), "parameter index must be an integer in [0, 4096), got 4096"],
  ];
  for (const [fn, message] of cases) assertThrows(fn, RangeError, message);
});
