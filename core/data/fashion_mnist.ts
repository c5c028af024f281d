/**
 * Fashion-MNIST (Xiao et al. 2017: 60,000 training and 10,000 test images, 28×28 grey levels, 10
 * classes) for the ViT experiment: the IDX files of the Debian package `dataset-fashion-mnist`
 * (gzipped, under {@linkcode FASHION_MNIST_SOURCE}) are parsed once and cached as raw binary
 * (`*_images.bin`, `*_labels.bin` and `meta.json` in `data/fashion-mnist`), as the Brown tokens
 * are; loading reads only the cache.
 *
 * @module
 */

import { DataCacheError } from "./cache.ts";

/** Where the Debian package `dataset-fashion-mnist` puts the gzipped IDX files. */
export const FASHION_MNIST_SOURCE = "/usr/share/datasets/fashion-mnist";
/** The default cache directory of {@linkcode prepareFashionMnist}. */
export const DEFAULT_FASHION_MNIST_DIR = "data/fashion-mnist";
/** The class names, in label order. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

const CACHE_FORMAT = "twofour-fashion-mnist-1";
const SPLITS = ["train", "test"] as const;

/** A parsed IDX file of unsigned bytes. */
export interface IdxArray {
  /** The dimensions (e.g. `[60000, 28, 28]`). */
  dims: number[];
  /** The values, row-major. */
  data: Uint8Array;
}

/**
 * Parses an IDX file of unsigned bytes (type code `0x08`): two zero bytes, the type, the number
 * of dimensions, each dimension as a big-endian u32, then the values.
 *
 * @param bytes The file's bytes (not gzipped).
 * @param source The file's name, for error messages.
 * @returns The dimensions and values.
 * @throws {DataCacheError} On a bad magic number, a type other than unsigned byte, or a length
 * that does not match the dimensions.
 * @example
 * ```ts
 * import { parseIdx } from "./fashion_mnist.ts";
 * const file = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]);
 * const { dims, data } = parseIdx(file, "labels");
 * if (dims[0] !== 3 || data[2] !== 9) throw new Error("unexpected");
 * ```
 */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  const fail = (why: string) => new DataCacheError(`Cannot parse the IDX file ${source}: ${why}`);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw fail(`bad magic number (${[...bytes.subarray(0, 4)]})`);
  }
  if (bytes[2] !== 0x08) throw fail(`expected unsigned bytes (type 0x08), got 0x${bytes[2]}`);
  const ndim = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (ndim < 1 || bytes.length < 4 + 4 * ndim) throw fail(`truncated header (${ndim} dims)`);
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * ndim;
  if (bytes.length - start !== count) {
    throw fail(`expected ${count} values for [${dims}], got ${bytes.length - start}`);
  }
  return { dims, data: bytes.slice(start) };
}

/**
 * Encodes an IDX file of unsigned bytes (the inverse of {@linkcode parseIdx}; tests and tools
 * write small data sets with it).
 *
 * @param dims The dimensions.
 * @param data The values, row-major (`Π dims` of them).
 * @returns The file's bytes.
 * @throws {RangeError} If the value count does not match the dimensions.
 */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array<ArrayBuffer> {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count || dims.length < 1 || dims.length > 255) {
    throw new RangeError(
      `Cannot encode an IDX file: expected ${count} values for [${dims}], got ${data.length}`,
    );
  }
  const out = new Uint8Array(4 + 4 * dims.length + count);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** The IDX file names of a split: images, then labels (without `.gz`). */
export const FASHION_MNIST_IDX_NAMES = {
  train: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
  test: ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
} as const;

/** One split: `count` images of `rows × cols` bytes and their labels. */
export interface ImageSplit {
  /** Number of images. */
  count: number;
  /** Pixels, `count·rows·cols` grey levels 0..255, image-major. */
  images: Uint8Array;
  /** Labels 0..9. */
  labels: Uint8Array;
}

/** The loaded data set. */
export interface FashionMnist {
  /** Image height. */
  rows: number;
  /** Image width. */
  cols: number;
  /** The 60,000 training images. */
  train: ImageSplit;
  /** The 10,000 test images. */
  test: ImageSplit;
}

async function readMaybeGzip(path: string): Promise<Uint8Array> {
  const bytes = await Deno.readFile(path);
  if (!path.endsWith(".gz")) return bytes;
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function findIdx(sourceDir: string, name: string): Promise<string> {
  for (const candidate of [`${sourceDir}/${name}.gz`, `${sourceDir}/${name}`]) {
    try {
      await Deno.stat(candidate);
      return candidate;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  throw new DataCacheError(
    `Cannot prepare Fashion-MNIST: no ${name}(.gz) in ${sourceDir} (install the Debian package ` +
      `dataset-fashion-mnist: apt-get install -y dataset-fashion-mnist)`,
  );
}

function checkSplit(split: ImageSplit, rows: number, cols: number, source: string): void {
  if (split.images.length !== split.count * rows * cols || split.labels.length !== split.count) {
    throw new DataCacheError(`Cannot use ${source}: images and labels disagree on the count`);
  }
  const bad = split.labels.findIndex((l) => l > 9);
  if (bad >= 0) {
    throw new DataCacheError(`Cannot use ${source}: label ${split.labels[bad]} at ${bad} (0..9)`);
  }
}

/**
 * Builds the cache from the IDX files (gzipped or not) if it is missing or of another format.
 *
 * @param options `source`: the IDX directory (default {@linkcode FASHION_MNIST_SOURCE}); `dir`: the
 * cache (default {@linkcode DEFAULT_FASHION_MNIST_DIR}); `log`: progress lines.
 * @returns Whether an existing cache was reused.
 * @throws {DataCacheError} If an IDX file is missing (the message names the Debian package) or
 * malformed.
 */
export async function prepareFashionMnist(
  options: { source?: string; dir?: string; log?: (line: string) => void } = {},
): Promise<{ reused: boolean }> {
  const { source = FASHION_MNIST_SOURCE, dir = DEFAULT_FASHION_MNIST_DIR, log = () => {} } =
    options;
  try {
    await loadFashionMnist(dir);
    return { reused: true };
  } catch (e) {
    if (!(e instanceof DataCacheError)) throw e;
  }
  const meta: Record<string, unknown> = { format: CACHE_FORMAT, source };
  await Deno.mkdir(dir, { recursive: true });
  for (const split of SPLITS) {
    const [imageName, labelName] = FASHION_MNIST_IDX_NAMES[split];
    const images = parseIdx(await readMaybeGzip(await findIdx(source, imageName)), imageName);
    const labels = parseIdx(await readMaybeGzip(await findIdx(source, labelName)), labelName);
    if (images.dims.length !== 3 || labels.dims.length !== 1) {
      throw new DataCacheError(
        `Cannot prepare Fashion-MNIST: expected [n, rows, cols] images and [n] labels, got ` +
          `[${images.dims}] and [${labels.dims}]`,
      );
    }
    const [count, rows, cols] = images.dims;
    checkSplit({ count, images: images.data, labels: labels.data }, rows, cols, imageName);
    await Deno.writeFile(`${dir}/${split}_images.bin`, images.data);
    await Deno.writeFile(`${dir}/${split}_labels.bin`, labels.data);
    meta[split] = { count, rows, cols };
    log(`Fashion-MNIST ${split}: ${count} images of ${rows}×${cols} from ${source}`);
  }
  await Deno.writeTextFile(`${dir}/meta.json`, JSON.stringify(meta, null, 2) + "\n");
  return { reused: false };
}

/**
 * Loads the cache written by {@linkcode prepareFashionMnist}.
 *
 * @param dir The cache directory (default {@linkcode DEFAULT_FASHION_MNIST_DIR}).
 * @returns Both splits.
 * @throws {DataCacheError} If a file is missing, of another format or inconsistent.
 */
export async function loadFashionMnist(
  dir: string = DEFAULT_FASHION_MNIST_DIR,
): Promise<FashionMnist> {
  const read = async (name: string) => {
    try {
      return await Deno.readFile(`${dir}/${name}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new DataCacheError(`Cannot load Fashion-MNIST: ${dir}/${name} is missing`);
      }
      throw e;
    }
  };
  let meta: Record<string, { count: number; rows: number; cols: number }> & { format?: string };
  try {
    meta = JSON.parse(new TextDecoder().decode(await read("meta.json")));
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new DataCacheError(`Cannot load Fashion-MNIST: ${dir}/meta.json is not JSON`);
    }
    throw e;
  }
  if (meta.format !== CACHE_FORMAT) {
    throw new DataCacheError(
      `Cannot load Fashion-MNIST: ${dir}/meta.json has format ${meta.format}, expected ${CACHE_FORMAT}`,
    );
  }
  const { rows, cols } = meta.train;
  const splits = {} as Record<(typeof SPLITS)[number], ImageSplit>;
  for (const split of SPLITS) {
    const s = {
      count: meta[split].count,
      images: await read(`${split}_images.bin`),
      labels: await read(`${split}_labels.bin`),
    };
    if (meta[split].rows !== rows || meta[split].cols !== cols) {
      throw new DataCacheError(`Cannot load Fashion-MNIST: the splits differ in image size`);
    }
    checkSplit(s, rows, cols, `${dir}/${split}_*.bin`);
    splits[split] = s;
  }
  return { rows, cols, ...splits };
}
