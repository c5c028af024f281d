// The safetensors reader is at least as strict as the reference library: a generated corpus of
// malformed files (each refused with its expected error, in a short message), files that are not
// regular files, a header checked before any data is read, and null-prototype maps.
import { malformedSafetensorsCorpus, rawSafetensors, VALID_HEADER } from "./_safetensors_corpus.ts";
import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
} from "./safetensors.ts";
import { assert } from "../reference/testing.ts";

/** Longest message allowed for an error about a malformed file (plus the path). */
const MAX_MESSAGE = 320;

function expectRejected(run: () => unknown, expect: string, name: string, extra = 0): void {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  assert(error !== undefined, `${name}: accepted`);
  assert(error instanceof CheckpointError, `${name}: expected a CheckpointError, got ${error}`);
  const message = (error as Error).message;
  assert(message.includes(expect), `${name}: expected "${expect}" in "${message.slice(0, 400)}"`);
  assert(
    message.length <= MAX_MESSAGE + extra,
    `${name}: a ${message.length}-character message: ${message.slice(0, 200)}…`,
  );
}

async function expectLoadRejected(path: string, expect: string, name: string): Promise<void> {
  let error: unknown;
  try {
    await loadSafetensors(path);
  } catch (e) {
    error = e;
  }
  expectRejected(
    () => {
      if (error !== undefined) throw error;
    },
    expect,
    name,
    path.length,
  );
  assert((error as Error).message.includes(path), `${name}: the message does not name ${path}`);
}

Deno.test("safetensors corpus: every malformed file is refused with its error, in a short message", async () => {
  const corpus = malformedSafetensorsCorpus();
  const dir = await Deno.makeTempDir();
  try {
    for (const c of corpus) {
      expectRejected(() => decodeSafetensors(c.bytes), c.expect, c.name);
      const path = `${dir}/case.safetensors`;
      await Deno.writeFile(path, c.bytes);
      await expectLoadRejected(path, c.expect, `${c.name} (from a file)`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  console.log(`safetensors corpus: ${corpus.length} malformed files refused (decode and load)`);
  assert(corpus.length >= 150, `the corpus shrank to ${corpus.length} cases`);
});

Deno.test("safetensors corpus: the valid base file of the corpus loads", () => {
  const { tensors, metadata } = decodeSafetensors(
    rawSafetensors(VALID_HEADER, new Uint8Array([1, 2, 3, 4])),
  );
  assert(tensors.w.data.join() === "1,2,3,4" && metadata.a === "b", "the base file is wrong");
});

Deno.test("loadSafetensors reads regular files only: FIFO, devices, directories are refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const valid = `${dir}/valid.safetensors`;
    await Deno.writeFile(valid, rawSafetensors(VALID_HEADER, new Uint8Array(4)));
    await Deno.symlink(valid, `${dir}/link-to-valid`);
    assert((await loadSafetensors(`${dir}/link-to-valid`)).tensors.w !== undefined, "link");

    await Deno.symlink("/dev/zero", `${dir}/zero`);
    await expectLoadRejected(`${dir}/zero`, "a character device", "symlink to /dev/zero");
    await Deno.symlink("/dev/null", `${dir}/null`);
    await expectLoadRejected(`${dir}/null`, "a character device", "symlink to /dev/null");
    await expectLoadRejected(dir, "a directory", "a directory");
    const fifo = `${dir}/fifo`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert(made.success, "mkfifo failed");
    // On a lenient reader this hangs (no writer ever opens the FIFO) and the test times out.
    await expectLoadRejected(fifo, "a FIFO", "a FIFO");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSafetensors checks the header before it reads the data (a sparse 1 TB file)", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/huge.safetensors`;
  try {
    const file = await Deno.open(path, { write: true, create: true });
    await file.write(rawSafetensors(VALID_HEADER, new Uint8Array(4)));
    await file.truncate(2 ** 40); // sparse: takes no disk space, would take 1 TB of memory
    file.close();
    await expectLoadRejected(path, "trailing garbage", "a 1 TB file with a 4-byte tensor");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors maps have no prototype: a tensor or key named __proto__ is just a name", () => {
  const bytes = encodeSafetensors(
    JSON.parse(
      '{"__proto__":{"dtype":"U8","shape":[1],"data":null},"constructor":{"dtype":"U8","shape":[1],"data":null}}',
      (key, value) => key === "data" ? new Uint8Array([key.length]) : value,
    ),
    JSON.parse('{"__proto__":"meta","toString":"x"}'),
  );
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert(Object.getPrototypeOf(tensors) === null, "tensors has a prototype");
  assert(Object.getPrototypeOf(metadata) === null, "metadata has a prototype");
  assert(Object.keys(tensors).sort().join() === "__proto__,constructor", "tensor names lost");
  assert(tensors["__proto__"].data instanceof Uint8Array, "__proto__ is not a tensor");
  assert(
    metadata["__proto__"] === "meta" && metadata["toString"] as unknown === "x",
    "metadata lost",
  );
});
