/**
 * `tools/check_impl.py`, the one-command vector checker for other implementations: it passes the
 * NumPy implementations of `tools/numpy_impl.py` on every case they implement, and it catches the
 * negative controls (hard 2:4 ties broken towards the lower index; MVUE in float64) on exactly the
 * cases that exercise them.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

async function checkImpl(...args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command("python3", {
    args: ["tools/check_impl.py", "--module", "tools/numpy_impl.py", ...args],
    cwd: ROOT,
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}

/** The result column of each `case output` row of the table. */
function results(out: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of out.split("\n")) {
    const cols = line.trim().split(/\s{2,}/);
    if (cols.length >= 7 && /^(PASS|FAIL|n\/a)$/.test(cols[6])) {
      rows.set(`${cols[0]} ${cols[2]}`, cols[6]);
    }
  }
  return rows;
}

Deno.test("check_impl.py: the NumPy implementations pass every case of vectors/", async () => {
  const { code, out } = await checkImpl();
  assertEquals(code, 0, out);
  const rows = results(out);
  assertEquals(rows.size, 220, out);
  assert([...rows.values()].every((r) => r === "PASS"), out);
  assert(
    /107 cases, 220 outputs: 220 passed, 0 failed, 0 not returned; vector files: 0 problems/.test(
      out,
    ),
    out,
  );
  for (
    const f of ["prune24", "transposableMask24", "compress24", "philox4x32", "quantizeFp8", "geglu"]
  ) {
    assert(out.includes(`  ${f}  `), `no ${f} row`);
  }
});

Deno.test("check_impl.py: a lower-index tie rule fails the tie cases (and only those)", async () => {
  const { code, out } = await checkImpl("--map", "prune24=prune24_wrong_ties", "--only=prune24");
  assertEquals(code, 1, out);
  const rows = results(out);
  for (const c of ["spec9", "edges", "ties_4x8", "ties_12x20"]) {
    assertEquals(rows.get(`prune24/${c} mask`), "FAIL", out);
  }
  for (const c of ["random_4x8", "random_12x20", "random_64x128"]) {
    assertEquals(rows.get(`prune24/${c} mask`), "PASS", out); // no ties: the rule does not matter
  }
});

Deno.test("check_impl.py: a float64 MVUE fails the uniform-boundary case", async () => {
  const { code, out } = await checkImpl(
    "--map",
    "mvue24WithUniforms=mvue24_wrong_float64",
    "--only=mvue24WithUniforms",
  );
  assertEquals(code, 1, out);
  assertEquals(results(out).get("mvue24/uniform_boundaries out"), "FAIL", out);
});

Deno.test("check_impl.py: nothing implemented is exit code 2, an unknown mapping is refused", async () => {
  assertEquals((await checkImpl("--only=noSuchFunction")).code, 2);
  const bad = await checkImpl("--map", "prune24=no_such_function");
  assert(bad.code !== 0 && bad.out.includes("has no function 'no_such_function'"), bad.out);
});

Deno.test("tests/python_check.py: the wrapper passes and reports both negative controls caught", async () => {
  const { code, stdout } = await new Deno.Command("python3", {
    args: ["tests/python_check.py"],
    cwd: ROOT,
  }).output();
  const out = new TextDecoder().decode(stdout);
  assertEquals(code, 0, out);
  assertEquals(out.match(/negative control \(.*\): caught/g)?.length, 2, out);
});
