import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  type SafetensorsTensor,
  saveSafetensors,
  writeFileAtomic,
} from "./safetensors.ts";
import { assert, assertRejects, assertThrows, withTempDir } from "../reference/testing.ts";

function sameTensor(a: SafetensorsTensor, b: SafetensorsTensor, name: string): void {
  assert(a.dtype === b.dtype, `${name}: dtype ${a.dtype} != ${b.dtype}`);
  assert(JSON.stringify(a.shape) === JSON.stringify(b.shape), `${name}: shape differs`);
  assert(a.data.constructor === b.data.constructor, `${name}: typed array class differs`);
  assert(a.data.length === b.data.length, `${name}: length differs`);
  for (let i = 0; i < a.data.length; i++) {
    // Object.is distinguishes -0 and compares NaN bit patterns by value; both must round-trip.
    assert(Object.is(a.data[i], b.data[i]), `${name}[${i}]: ${a.data[i]} != ${b.data[i]}`);
  }
}

const ALL_DTYPES: Record<string, SafetensorsTensor> = {
  "f32": {
    dtype: "F32",
    shape: [2, 3],
    data: new Float32Array([1.5, -0, Infinity, -Infinity, 1e-45, 3.4028234663852886e38]),
  },
  "f64": { dtype: "F64", shape: [3], data: new Float64Array([Math.PI, -1e-310, 2 ** 60]) },
  "i32": { dtype: "I32", shape: [2, 2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, -7]) },
  "u8": { dtype: "U8", shape: [5], data: new Uint8Array([0, 1, 127, 128, 255]) },
  "u32": { dtype: "U32", shape: [1, 2], data: new Uint32Array([0, 2 ** 32 - 1]) },
  "scalar": { dtype: "F32", shape: [], data: new Float32Array([42]) },
  "empty": { dtype: "F64", shape: [0, 4], data: new Float64Array(0) },
  "layer.0.weight": { dtype: "U8", shape: [1], data: new Uint8Array([9]) },
};

Deno.test("safetensors round-trips every dtype, scalars, empty tensors and metadata", () => {
  const metadata = { format: "pt", step: "123", "unicode ü": "β = 0.5" };
  const bytes = encodeSafetensors(ALL_DTYPES, metadata);
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert(headerLength % 8 === 0, `header length ${headerLength} is not a multiple of 8`);
  const { tensors, metadata: back } = decodeSafetensors(bytes);
  assert(
    JSON.stringify(Object.keys(tensors).sort()) === JSON.stringify(Object.keys(ALL_DTYPES).sort()),
    `names differ: ${Object.keys(tensors)}`,
  );
  for (const [name, t] of Object.entries(ALL_DTYPES)) sameTensor(tensors[name], t, name);
  assert(
    JSON.stringify(back) === JSON.stringify(metadata),
    `metadata differs: ${JSON.stringify(back)}`,
  );
});

Deno.test("safetensors keeps each tensor aligned to its element size", () => {
  const bytes = encodeSafetensors({
    a: { dtype: "U8", shape: [3], data: new Uint8Array(3) },
    b: { dtype: "F64", shape: [1], data: new Float64Array(1) },
    c: { dtype: "I32", shape: [1], data: new Int32Array(1) },
  });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  // Largest element first: F64 at 0, I32 at 8, U8 at 12.
  assert(header.b.data_offsets.join() === "0,8", `b at ${header.b.data_offsets}`);
  assert(header.c.data_offsets.join() === "8,12", `c at ${header.c.data_offsets}`);
  assert(header.a.data_offsets.join() === "12,15", `a at ${header.a.data_offsets}`);
});

Deno.test("safetensors writes the hand-computed byte layout of a tiny file", () => {
  const bytes = encodeSafetensors({
    a: { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) },
    b: { dtype: "F32", shape: [2], data: new Float32Array([1, -2]) },
  });
  // JSON: 53 bytes for b's entry with the opening brace, 54 for a's with the closing brace = 107,
  // padded with 5 spaces to 112. Data: b (F32, larger element) at [0, 8), then a at [8, 11).
  const json = '{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"a":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}';
  assert(json.length === 107, `hand count of the JSON is wrong: ${json.length}`);
  const expected = new Uint8Array(8 + 112 + 11);
  expected.set([112, 0, 0, 0, 0, 0, 0, 0], 0);
  expected.set(new TextEncoder().encode(json + "     "), 8);
  // 1.0f = 0x3f800000, -2.0f = 0xc0000000, little-endian; then the three bytes of a.
  expected.set([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 1, 2, 3], 120);
  assert(bytes.length === 131, `file length ${bytes.length}, expected 131`);
  for (let i = 0; i < expected.length; i++) {
    assert(bytes[i] === expected[i], `byte ${i}: ${bytes[i]} != ${expected[i]}`);
  }
  // And a hand-written file decodes to the same tensors.
  const decoded = decodeSafetensors(expected);
  assert(decoded.tensors.b.data[1] === -2 && decoded.tensors.a.data[2] === 3, "decode differs");
});

Deno.test("safetensors encoder rejects invalid input with TypeError/RangeError", () => {
  assertThrows(
    () =>
      encodeSafetensors({ x: { dtype: "F32", shape: [3], data: new Float64Array(3) } as never }),
    TypeError,
    "needs a Float32Array, got Float64Array",
  );
  assertThrows(
    () => encodeSafetensors({ x: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }),
    RangeError,
    "needs 4 values, got 3",
  );
  assertThrows(
    () => encodeSafetensors({ x: { dtype: "BF16", shape: [1], data: new Uint8Array(2) } as never }),
    TypeError,
    'unsupported dtype "BF16"',
  );
  assertThrows(
    () => encodeSafetensors({ x: { dtype: "U8", shape: [-1], data: new Uint8Array(0) } }),
    RangeError,
    "shape must be non-negative integers",
  );
  assertThrows(
    () => encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }),
    RangeError,
    'invalid tensor name "__metadata__"',
  );
  assertThrows(
    () => encodeSafetensors({}, { step: 3 as unknown as string }),
    TypeError,
    'metadata value of "step" must be a string',
  );
});

/** A file with a hand-written header (padded to a multiple of 8) and the given data bytes. */
function rawFile(headerJson: string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(headerJson);
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + data.length).fill(0x20, 8, 8 + n);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.set(data, 8 + n);
  return out;
}

Deno.test("safetensors decoder rejects every truncation with CheckpointError", () => {
  const bytes = encodeSafetensors(ALL_DTYPES, { note: "x" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const cuts = [0, 3, 7, 8, 9, 8 + n - 1, 8 + n, 8 + n + 1, bytes.length - 1];
  for (let cut = 0; cut < bytes.length; cut += 13) cuts.push(cut);
  for (const cut of cuts) {
    try {
      decodeSafetensors(bytes.slice(0, cut));
    } catch (e) {
      assert(e instanceof CheckpointError, `cut at ${cut}: got ${e}`);
      assert(e.name === "CheckpointError", `cut at ${cut}: name ${e.name}`);
      continue;
    }
    throw new Error(`a file truncated to ${cut} of ${bytes.length} bytes was accepted`);
  }
  assertThrows(() => decodeSafetensors(bytes.slice(0, 5)), CheckpointError, "too short");
  assertThrows(
    () => decodeSafetensors(bytes.slice(0, 8 + n - 1)),
    CheckpointError,
    "goes beyond the end of the file",
  );
  assertThrows(
    () => decodeSafetensors(bytes.slice(0, bytes.length - 1)),
    CheckpointError,
    "out of range",
  );
});

Deno.test("safetensors decoder rejects a corrupted header length", () => {
  const bytes = encodeSafetensors(ALL_DTYPES);
  const flipped = bytes.slice();
  flipped[7] ^= 0x80; // the top bit of the 64-bit length
  assertThrows(() => decodeSafetensors(flipped), CheckpointError, "goes beyond the end");
  const shorter = bytes.slice();
  new DataView(shorter.buffer).setBigUint64(0, BigInt(16), true);
  assertThrows(() => decodeSafetensors(shorter), CheckpointError, "not valid UTF-8 JSON");
});

Deno.test("safetensors decoder rejects bad JSON and malformed entries", () => {
  const d = new Uint8Array(4);
  const entry = (e: string) => `{"t":${e}}`;
  const cases: [Uint8Array, string][] = [
    [rawFile('{"t": {"dtype": "U8",', d), "not valid UTF-8 JSON"],
    [rawFile("[1, 2]", new Uint8Array(0)), "must be a JSON object"],
    [rawFile("null    ", new Uint8Array(0)), "must be a JSON object"],
    [rawFile(entry('{"dtype":"F16","shape":[2],"data_offsets":[0,4]}'), d), "unsupported dtype"],
    [
      rawFile(entry('{"dtype":"U8","shape":[4.5],"data_offsets":[0,4]}'), d),
      "not a non-negative integer literal",
    ],
    [rawFile(entry('{"dtype":"U8","shape":[4],"data_offsets":[0]}'), d), "data_offsets must"],
    [rawFile(entry('{"dtype":"U8","shape":[4],"data_offsets":[0,9]}'), d), "out of range"],
    [rawFile(entry('{"dtype":"U8","shape":[4],"data_offsets":[3,1]}'), d), "out of range"],
    [rawFile(entry('{"dtype":"U32","shape":[4],"data_offsets":[0,4]}'), d), "needs 16 bytes"],
    [rawFile(entry('{"dtype":"U8","shape":[2],"data_offsets":[0,2]}'), d), "trailing garbage"],
    [rawFile(entry('{"dtype":"U8","shape":[4],"data_offsets":[0,4],"x":1}'), d), "unexpected"],
    [rawFile(entry("7"), d), "must be an object"],
    [rawFile('{"__metadata__":{"a":1}}', new Uint8Array(0)), "must be a string"],
    [rawFile('{"__metadata__":[]}', new Uint8Array(0)), "must be an object of strings"],
  ];
  // Invalid UTF-8 in the header.
  const badUtf8 = rawFile('{"a":"xx"}', new Uint8Array(0));
  badUtf8[14] = 0xff;
  cases.push([badUtf8, "not valid UTF-8 JSON"]);
  for (const [bytes, message] of cases) {
    assertThrows(() => decodeSafetensors(bytes), CheckpointError, message);
  }
});

Deno.test("safetensors decoder rejects overlapping offsets, gaps and trailing bytes", () => {
  const overlap = rawFile(
    '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},' +
      '"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}',
    new Uint8Array(6),
  );
  assertThrows(() => decodeSafetensors(overlap), CheckpointError, "overlaps");
  const same = rawFile(
    '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},' +
      '"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}',
    new Uint8Array(4),
  );
  assertThrows(() => decodeSafetensors(same), CheckpointError, "overlaps");
  const gap = rawFile(
    '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},' +
      '"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}',
    new Uint8Array(5),
  );
  assertThrows(() => decodeSafetensors(gap), CheckpointError, "gap in the data section");
  const good = encodeSafetensors(ALL_DTYPES);
  const trailing = new Uint8Array(good.length + 3);
  trailing.set(good);
  assertThrows(() => decodeSafetensors(trailing), CheckpointError, "3 bytes of trailing garbage");
  // Zero-sized tensors may share an offset: that is not an overlap.
  const zeros = rawFile(
    '{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},' +
      '"b":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}',
    new Uint8Array(0),
  );
  const z = decodeSafetensors(zeros).tensors;
  assert(z.a.data.length === 0 && z.b.data.length === 0, "zero-sized tensors not decoded");
});

Deno.test("decoded tensors do not alias the input bytes", () => {
  const bytes = encodeSafetensors({ w: { dtype: "U8", shape: [2], data: new Uint8Array([5, 6]) } });
  const { tensors } = decodeSafetensors(bytes);
  bytes.fill(0);
  assert(tensors.w.data[0] === 5 && tensors.w.data[1] === 6, "decoded data changed with input");
});

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("saveSafetensors/loadSafetensors round-trip through a file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/model.safetensors`;
    await saveSafetensors(path, ALL_DTYPES, { step: "5" });
    const { tensors, metadata } = await loadSafetensors(path);
    for (const [name, t] of Object.entries(ALL_DTYPES)) sameTensor(tensors[name], t, name);
    assert(metadata.step === "5", "metadata lost");
    assert((await listDir(dir)).join() === "model.safetensors", "temporary file left behind");
    // Truncated on disk: rejected whole.
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 2));
    await assertRejects(() => loadSafetensors(path), CheckpointError); // a truncated file
  });
});

Deno.test("writeFileAtomic replaces the file and leaves the old one when interrupted", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/ckpt.safetensors`;
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    await writeFileAtomic(path, new Uint8Array([4, 5]));
    assert((await Deno.readFile(path)).join() === "4,5", "the file was not replaced");

    // A failure after the data is written and synced, before the rename.
    let seenTemp = "";
    let thrown: unknown;
    try {
      await writeFileAtomic(path, new Uint8Array([9, 9, 9, 9]), {
        beforeRename: async (tempPath) => {
          seenTemp = tempPath;
          const partial = await Deno.readFile(tempPath);
          assert(partial.join() === "9,9,9,9", "temporary file incomplete before rename");
          throw new Error("simulated crash");
        },
      });
    } catch (e) {
      thrown = e;
    }
    assert(thrown instanceof Error && thrown.message === "simulated crash", `got ${thrown}`);
    assert(seenTemp.startsWith(`${dir}/.ckpt.safetensors.`), `temp path ${seenTemp}`);
    assert((await Deno.readFile(path)).join() === "4,5", "old file damaged by a failed write");
    assert((await listDir(dir)).join() === "ckpt.safetensors", "temporary file left behind");

    // A real I/O failure: the rename target is a non-empty directory.
    const target = `${dir}/occupied`;
    await Deno.mkdir(target);
    await Deno.writeFile(`${target}/keep`, new Uint8Array([7]));
    thrown = undefined;
    try {
      await writeFileAtomic(target, new Uint8Array([1]));
    } catch (e) {
      thrown = e;
    }
    assert(thrown instanceof Error, "renaming over a directory did not fail");
    assert((await Deno.readFile(`${target}/keep`)).join() === "7", "directory content damaged");
    assert(
      (await listDir(dir)).join() === "ckpt.safetensors,occupied",
      `temporary file left behind: ${await listDir(dir)}`,
    );

    // A missing directory fails before anything is created.
    thrown = undefined;
    try {
      await writeFileAtomic(`${dir}/missing/x.bin`, new Uint8Array([1]));
    } catch (e) {
      thrown = e;
    }
    assert(thrown instanceof Deno.errors.NotFound, `expected NotFound, got ${thrown}`);
  });
});

/**
 * Written by Python's `safetensors.numpy.save` (safetensors 0.8.0) for
 * `{"w": arange(6, float32).reshape(2, 3), "b": [1, 2] uint32, "c": [250] uint8, "d": [-1.5]
 * float64, "i": [-3] int32}` with metadata `{"format": "np"}`. The same session loaded this
 * module's encoder output with `safetensors.numpy.load`, `safe_open(...).metadata()` and
 * `safetensors.torch.load_file` (torch 2.11) and got every value, shape, dtype and the metadata
 * back (the cross-check in the module documentation of `safetensors.ts`).
 */
const PYTHON_FILE =
  "OAEAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJmb3JtYXQiOiJucCJ9LCJkIjp7ImR0eXBlIjoiRjY0Iiwic2hhcGUiOl" +
  "sxXSwiZGF0YV9vZmZzZXRzIjpbMCw4XX0sInciOnsiZHR5cGUiOiJGMzIiLCJzaGFwZSI6WzIsM10sImRhdGFfb2Zm" +
  "c2V0cyI6WzgsMzJdfSwiYiI6eyJkdHlwZSI6IlUzMiIsInNoYXBlIjpbMl0sImRhdGFfb2Zmc2V0cyI6WzMyLDQwXX" +
  "0sImkiOnsiZHR5cGUiOiJJMzIiLCJzaGFwZSI6WzFdLCJkYXRhX29mZnNldHMiOls0MCw0NF19LCJjIjp7ImR0eXBl" +
  "IjoiVTgiLCJzaGFwZSI6WzFdLCJkYXRhX29mZnNldHMiOls0NCw0NV19fSAgICAgICAAAAAAAAD4vwAAAAAAAIA/AA" +
  "AAQAAAQEAAAIBAAACgQAEAAAACAAAA/f////o=";

Deno.test("safetensors decodes a file written by Python's safetensors", () => {
  const bytes = Uint8Array.from(atob(PYTHON_FILE), (c) => c.charCodeAt(0));
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert(JSON.stringify(metadata) === '{"format":"np"}', `metadata ${JSON.stringify(metadata)}`);
  sameTensor(
    tensors.w,
    { dtype: "F32", shape: [2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
    "w",
  );
  sameTensor(tensors.b, { dtype: "U32", shape: [2], data: new Uint32Array([1, 2]) }, "b");
  sameTensor(tensors.c, { dtype: "U8", shape: [1], data: new Uint8Array([250]) }, "c");
  sameTensor(tensors.d, { dtype: "F64", shape: [1], data: new Float64Array([-1.5]) }, "d");
  sameTensor(tensors.i, { dtype: "I32", shape: [1], data: new Int32Array([-3]) }, "i");
  // Re-encoding gives a file Python's reader accepts by the same rules: decode it again.
  const again = decodeSafetensors(encodeSafetensors(tensors, metadata));
  for (const name of Object.keys(tensors)) sameTensor(again.tensors[name], tensors[name], name);
});
