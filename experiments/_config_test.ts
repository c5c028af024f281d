import {
  assertInt,
  assertNumber,
  assertOneOf,
  cliErrorLine,
  HelpRequested,
  parseConfig,
  parseList,
  usageText,
} from "./_config.ts";
import { CheckpointError } from "../core/safetensors.ts";
import { DataCacheError } from "../core/data/mod.ts";
import { WebGpuUnavailableError } from "../gpu/runtime.ts";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { assertThrows } from "../reference/testing.ts";

const defaults = { preset: "small", steps: 10, lr: 1e-3, out: "results/x", resume: false };
const presets = { small: {}, big: { steps: 100, lr: 3e-4 } };

Deno.test("parseConfig: typed overrides on top of the preset, bare booleans", () => {
  assertEquals(parseConfig(defaults, [], presets), defaults, "no arguments");
  assertEquals(
    parseConfig(defaults, ["--preset=big", "--lr=0.5", "--resume", "--out=/tmp/a=b"], presets),
    { preset: "big", steps: 100, lr: 0.5, out: "/tmp/a=b", resume: true },
    "preset, then overrides",
  );
  // The preset applies first even when it comes last.
  assertEquals(
    parseConfig(defaults, ["--steps=7", "--preset=big"], presets).steps,
    7,
    "override after preset",
  );
  assertEquals(parseConfig(defaults, ["--resume=false"]).resume, false, "explicit false");
});

Deno.test("parseConfig: rejects unknown, repeated, empty and mistyped flags", () => {
  const cases: [string[], string][] = [
    [["--bogus=1"], "unknown option --bogus"],
    [["--steps=1", "--steps=2"], "--steps is given twice"],
    [["--resume", "--resume=false"], "--resume is given twice"],
    [["--out="], 'expected a non-empty value, got ""'],
    [["--steps="], "expected a non-empty value"],
    [["--steps=ten"], 'expected a number, got "ten"'],
    [["--steps=Infinity"], "expected a number"],
    [["--resume=yes"], 'expected true or false, got "yes"'],
    [["--steps"], "expected --steps=VALUE"],
    [["steps=3"], 'expected --key=value, got "steps=3"'],
    [["-s=3"], "expected --key=value"],
    [["--preset=huge"], 'expected one of small, big, got "huge"'],
  ];
  for (const [args, message] of cases) {
    assertThrows(() => parseConfig(defaults, args, presets), TypeError, message);
  }
  // A preset spread from a shared block can carry a key the script lacks (TypeScript cannot see it).
  const shared = { warmup: 30 };
  assertThrows(
    () => parseConfig(defaults, ["--preset=big"], { small: {}, big: { ...shared, steps: 5 } }),
    TypeError,
    "Cannot apply the preset big: it sets warmup, not an option",
  );
});

Deno.test("value checks: integers, numbers, choices and lists", () => {
  assertInt("steps", 3, 1);
  assertThrows(() => assertInt("steps", 0, 1), RangeError, "--steps: expected an integer >= 1");
  assertThrows(() => assertInt("seed", 1.5, 0, 9), RangeError, "integer in [0, 9], got 1.5");
  assertNumber("lr", 1e-3, 0, { exclusiveMin: true });
  assertThrows(() => assertNumber("lr", 0, 0, { exclusiveMin: true }), RangeError, "> 0, got 0");
  assertThrows(
    () => assertNumber("val", 1, 0, { exclusiveMin: true, max: 1, exclusiveMax: true }),
    RangeError,
    "> 0 and < 1, got 1",
  );
  assertThrows(() => assertNumber("x", NaN, 0), RangeError, "got NaN");
  assertEquals(assertOneOf("labels", "group", ["genre", "group"]), "group", "a choice");
  assertThrows(() => assertOneOf("labels", "foo", ["genre", "group"]), TypeError, '"foo"');
  assertEquals(parseList("m", " a, b ", (s) => s.toUpperCase()), ["A", "B"], "list");
  assertThrows(() => parseList("m", ",", (s) => s), TypeError, "expected a non-empty list");
  assertThrows(() => parseList("m", "a,,b", (s) => s), TypeError, "an item of the list is empty");
  assertThrows(() => parseList("m", "a,b,a", (s) => s), TypeError, "a is listed twice");
});

Deno.test("cliErrorLine: one line for expected failures, nothing for bugs", () => {
  const expected: [Error, string][] = [
    [new TypeError("Bad value for --x"), "error: Bad value for --x"],
    [new RangeError("out of range\nsecond line"), "error: out of range"],
    [new CheckpointError("Cannot load c.safetensors: bad header"), "error: Cannot load c."],
    [new DataCacheError("Cannot load the Brown cache"), "error: Cannot load the Brown"],
    [new WebGpuUnavailableError("no adapter"), "error: WebGPU is not available: no adapter"],
    [new Deno.errors.NotFound("No such file"), "error: No such file"],
    [new Deno.errors.PermissionDenied("denied"), "error: denied"],
  ];
  for (const [e, line] of expected) {
    const got = cliErrorLine(e);
    if (got === undefined || !got.startsWith(line) || got.includes("\n")) {
      throw new Error(`${e.name}: got ${JSON.stringify(got)}`);
    }
  }
  assertEquals(cliErrorLine(new Error("a bug")), undefined, "a plain Error");
  assertEquals(cliErrorLine("thrown string"), undefined, "a non-error");
});

Deno.test("--help: parseConfig asks for the usage; usageText shows the doc and each option", () => {
  const help = assertThrows(
    () => parseConfig(defaults, ["--bogus", "--help"], presets),
    HelpRequested,
  ) as HelpRequested;
  const source = [
    "/**",
    " * Trains a thing.",
    " *",
    " * Usage: deno run -A x.ts --steps=3",
    " *",
    " * @module",
    " */",
    "const defaults = {",
    '  preset: "small", // small | big',
    "  /** Optimizer steps. */",
    "  steps: 10,",
    "  lr: 1e-3,",
    "};",
  ].join("\n");
  const lines = usageText(source, help).split("\n");
  assertEquals(lines.slice(0, 3), ["Trains a thing.", "", "Usage: deno run -A x.ts --steps=3"]);
  const option = (key: string) =>
    lines.find((l) => l.startsWith(`  --${key}=`))?.replace(/ +/g, " ");
  assertEquals(option("preset"), " --preset=small small | big");
  assertEquals(option("steps"), " --steps=10 Optimizer steps.");
  assertEquals(option("lr"), " --lr=0.001");
  assertEquals(option("out"), " --out=results/x");
  assertEquals(
    lines.at(-1),
    "Presets (--preset=NAME, applied before the other options): small, big",
  );
});
