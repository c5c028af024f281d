import {
  encodeIdx,
  FASHION_MNIST_IDX_NAMES,
  loadFashionMnist,
  parseIdx,
  prepareFashionMnist,
} from "./fashion_mnist.ts";
import { DataCacheError } from "./cache.ts";
import { assertRejects, assertThrows } from "../../reference/testing.ts";

/** Writes a small data set as IDX files (the training images gzipped, the rest plain). */
async function writeSource(dir: string, counts = { train: 6, test: 4 }): Promise<void> {
  for (const split of ["train", "test"] as const) {
    const n = counts[split];
    const images = Uint8Array.from({ length: n * 4 * 4 }, (_, i) => (i * 37 + n) % 256);
    const labels = Uint8Array.from({ length: n }, (_, i) => (i * 3) % 10);
    const [imageName, labelName] = FASHION_MNIST_IDX_NAMES[split];
    let imageBytes: Uint8Array<ArrayBuffer> = encodeIdx([n, 4, 4], images);
    let imagePath = `${dir}/${imageName}`;
    if (split === "train") {
      const gz = new Blob([imageBytes]).stream().pipeThrough(new CompressionStream("gzip"));
      imageBytes = new Uint8Array(await new Response(gz).arrayBuffer());
      imagePath += ".gz";
    }
    await Deno.writeFile(imagePath, imageBytes);
    await Deno.writeFile(`${dir}/${labelName}`, encodeIdx([n], labels));
  }
}

Deno.test("parseIdx: reads what encodeIdx writes; rejects bad magic, types and lengths", () => {
  const data = Uint8Array.from({ length: 24 }, (_, i) => i * 10);
  const { dims, data: back } = parseIdx(encodeIdx([2, 3, 4], data), "x");
  if (dims.join() !== "2,3,4" || back.join() !== data.join()) throw new Error("round trip");
  const good = encodeIdx([3], new Uint8Array([1, 2, 3]));
  assertThrows(
    () => parseIdx(Uint8Array.of(1, ...good.subarray(1)), "a"),
    DataCacheError,
    "bad magic",
  );
  const float = good.slice();
  float[2] = 0x0d;
  assertThrows(() => parseIdx(float, "b"), DataCacheError, "expected unsigned bytes");
  assertThrows(
    () => parseIdx(good.subarray(0, 10), "c"),
    DataCacheError,
    "expected 3 values for [3], got 2",
  );
  assertThrows(() => encodeIdx([2, 2], new Uint8Array(3)), RangeError, "expected 4 values");
});

Deno.test("prepareFashionMnist: builds the binary cache from (gzipped) IDX files, then reuses it", async () => {
  const source = await Deno.makeTempDir(), dir = await Deno.makeTempDir();
  try {
    await writeSource(source);
    if ((await prepareFashionMnist({ source, dir })).reused) throw new Error("fresh cache reused");
    const data = await loadFashionMnist(dir);
    if (data.rows !== 4 || data.train.count !== 6 || data.test.count !== 4) {
      throw new Error(`unexpected shape ${data.rows} ${data.train.count} ${data.test.count}`);
    }
    if (data.train.images[5] !== (5 * 37 + 6) % 256 || data.test.labels[3] !== 9) {
      throw new Error("values changed on the way");
    }
    if (!(await prepareFashionMnist({ source: "/nonexistent", dir })).reused) {
      throw new Error("the cache was not reused");
    }
  } finally {
    await Deno.remove(source, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareFashionMnist: a machine without the IDX files is told which package to install", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(
      () => prepareFashionMnist({ source: `${dir}/none`, dir: `${dir}/cache` }),
      DataCacheError,
      "install the Debian package dataset-fashion-mnist",
    );
    await assertRejects(
      () => loadFashionMnist(`${dir}/cache`),
      DataCacheError,
      "meta.json is missing",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
