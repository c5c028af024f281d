/**
 * The one configuration parser of the experiment scripts, nanoGPT style: a script opens with a
 * typed block of defaults (and optional presets), {@linkcode parseConfig} applies `--key=value`
 * overrides type-checked against the defaults, the script validates every value with the checks
 * below BEFORE any work, and {@linkcode runCli} ends an expected failure with one clean line and
 * answers `--help` with the script's module documentation and its options.
 *
 * @module
 */

import { CheckpointError } from "../core/safetensors.ts";
import { DataCacheError } from "../core/data/mod.ts";
import { WebGpuUnavailableError } from "../gpu/runtime.ts";

/** A flat configuration object: every value a number, string or boolean. */
export type FlatConfig = Record<string, number | string | boolean>;

/**
 * Applies command-line overrides to a script's defaults.
 *
 * Each argument is `--key=value` (or a bare `--key` for a boolean key, meaning `true`); `key` must
 * be a key of `defaults` and may be given once. The value is parsed as the default's type: a
 * finite number, `true`/`false`, or a non-empty string (an empty value such as `--out=` is never
 * meaningful). With `presets`, `--preset=NAME` (or the default preset) is applied first and the
 * other overrides on top of it. `--help` anywhere asks for the script's usage instead
 * ({@linkcode HelpRequested}, which {@linkcode runCli} prints).
 *
 * @param defaults The typed default configuration.
 * @param args The command-line arguments.
 * @param presets Named partial configurations (needs a string key `preset` in `defaults`).
 * @returns The configuration.
 * @throws {TypeError} On a positional argument, an unknown or repeated key, an empty value, or a
 * value that does not parse as the default's type; on an unknown preset or a preset that sets a key
 * `defaults` lacks.
 * @throws {HelpRequested} If `args` holds `--help`.
 */
export function parseConfig<T extends FlatConfig>(
  defaults: T,
  args: readonly string[],
  presets?: Record<string, Partial<T>>,
): T {
  if (args.includes("--help")) throw new HelpRequested(defaults, presets);
  const known = () => Object.keys(defaults).map((k) => `--${k}`).join(" ");
  const given = new Map<string, string>();
  for (const arg of args) {
    const m = /^--([A-Za-z][A-Za-z0-9_-]*)(?:=([\s\S]*))?$/.exec(arg);
    if (m === null) {
      throw new TypeError(
        `Cannot parse the arguments: expected --key=value, got ${JSON.stringify(arg)}`,
      );
    }
    const [, key, raw] = m;
    if (!Object.hasOwn(defaults, key)) {
      throw new TypeError(
        `Cannot parse the arguments: unknown option --${key}. Known options: ${known()}`,
      );
    }
    if (given.has(key)) {
      throw new TypeError(
        `Cannot parse the arguments: --${key} is given twice (${given.get(key)} and ${arg})`,
      );
    }
    given.set(key, arg);
    if (raw === undefined && typeof defaults[key] !== "boolean") {
      throw new TypeError(`Bad value for --${key}: expected --${key}=VALUE, got ${arg}`);
    }
  }
  const value = (key: string): string | undefined => {
    const arg = given.get(key);
    if (arg === undefined) return undefined;
    const eq = arg.indexOf("=");
    return eq < 0 ? "true" : arg.slice(eq + 1);
  };
  const out: FlatConfig = { ...defaults };
  if (presets !== undefined && typeof defaults.preset === "string") {
    const name = value("preset") ?? defaults.preset;
    if (!Object.hasOwn(presets, name)) {
      throw new TypeError(
        `Bad value for --preset: expected one of ${Object.keys(presets).join(", ")}, got ${
          JSON.stringify(name)
        }`,
      );
    }
    // A preset spread from shared blocks escapes TypeScript's excess-key check: check it here.
    const stray = Object.keys(presets[name]).find((k) => !Object.hasOwn(defaults, k));
    if (stray !== undefined) {
      throw new TypeError(`Cannot apply the preset ${name}: it sets ${stray}, not an option`);
    }
    Object.assign(out, presets[name], { preset: name });
  }
  for (const key of given.keys()) {
    if (key === "preset" && presets !== undefined) continue;
    out[key] = parseValue(key, value(key)!, typeof defaults[key]);
  }
  return out as T;
}

function parseValue(key: string, raw: string, kind: string): number | string | boolean {
  if (raw.trim() === "") {
    throw new TypeError(`Bad value for --${key}: expected a non-empty value, got ""`);
  }
  if (kind === "number") {
    const v = Number(raw);
    if (!Number.isFinite(v)) {
      throw new TypeError(`Bad value for --${key}: expected a number, got ${JSON.stringify(raw)}`);
    }
    return v;
  }
  if (kind === "boolean") {
    if (raw !== "true" && raw !== "false") {
      throw new TypeError(
        `Bad value for --${key}: expected true or false, got ${JSON.stringify(raw)}`,
      );
    }
    return raw === "true";
  }
  return raw;
}

/**
 * Checks that a configuration value is an integer in `[min, max]`.
 *
 * @throws {RangeError} If it is not.
 */
export function assertInt(name: string, value: number, min: number, max = Infinity): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new RangeError(`Bad value for --${name}: expected an integer ${range}, got ${value}`);
  }
}

/**
 * Checks that a configuration value is a finite number `>= min` (`> min` with `exclusiveMin`) and
 * `<= max` (`< max` with `exclusiveMax`).
 *
 * @throws {RangeError} If it is not.
 */
export function assertNumber(
  name: string,
  value: number,
  min: number,
  options: { max?: number; exclusiveMin?: boolean; exclusiveMax?: boolean } = {},
): void {
  const { max = Infinity, exclusiveMin = false, exclusiveMax = false } = options;
  const aboveMin = exclusiveMin ? value > min : value >= min;
  const belowMax = exclusiveMax ? value < max : value <= max;
  if (!Number.isFinite(value) || !aboveMin || !belowMax) {
    const low = `${exclusiveMin ? ">" : ">="} ${min}`;
    const range = max === Infinity ? low : `${low} and ${exclusiveMax ? "<" : "<="} ${max}`;
    throw new RangeError(`Bad value for --${name}: expected a number ${range}, got ${value}`);
  }
}

/**
 * Checks that a configuration value is one of `choices`.
 *
 * @returns The value, typed as the choice.
 * @throws {TypeError} If it is not.
 */
export function assertOneOf<C extends string>(
  name: string,
  value: string,
  choices: readonly C[],
): C {
  if (!(choices as readonly string[]).includes(value)) {
    throw new TypeError(
      `Bad value for --${name}: expected one of ${choices.join(", ")}, got ${
        JSON.stringify(value)
      }`,
    );
  }
  return value as C;
}

/**
 * Splits a comma-separated list value, checks each item with `parseItem` and that the list is not
 * empty and has no repeated item.
 *
 * @returns The parsed items, in the order given.
 * @throws {TypeError} If the list is empty, an item repeats, or `parseItem` throws.
 */
export function parseList<V>(name: string, text: string, parseItem: (item: string) => V): V[] {
  const items = text.split(",").map((s) => s.trim());
  if (items.every((s) => s === "")) {
    throw new TypeError(`Bad value for --${name}: expected a non-empty list, got ${text}`);
  }
  if (items.some((s) => s === "")) {
    throw new TypeError(`Bad value for --${name}: an item of the list is empty in ${text}`);
  }
  const repeated = items.find((s, i) => items.indexOf(s) !== i);
  if (repeated !== undefined) {
    throw new TypeError(`Bad value for --${name}: ${repeated} is listed twice in ${text}`);
  }
  return items.map(parseItem);
}

/**
 * The one-line message of an expected failure of a script (bad configuration, a corrupt
 * checkpoint or data cache, no WebGPU adapter, a filesystem error), or `undefined` for an
 * unexpected error (a bug, which keeps its stack trace).
 *
 * @param error What the script threw.
 * @returns `error: …` with the message's first line, or `undefined`.
 */
export function cliErrorLine(error: unknown): string | undefined {
  const expected = error instanceof TypeError || error instanceof RangeError ||
    error instanceof CheckpointError || error instanceof DataCacheError ||
    error instanceof WebGpuUnavailableError || isFilesystemError(error);
  if (!expected) return undefined;
  return `error: ${(error as Error).message.split("\n")[0]}`;
}

function isFilesystemError(error: unknown): boolean {
  return Object.values(Deno.errors).some((kind) => error instanceof kind);
}

/**
 * What {@linkcode parseConfig} throws for `--help`: not a failure but a request for the usage, which
 * {@linkcode runCli} prints (the script's module documentation, then every option with its
 * default and the comment beside it in the script) before exiting with status 0.
 */
export class HelpRequested extends Error {
  /** The script's defaults. */
  readonly defaults: FlatConfig;
  /** The names of its presets, if it has any. */
  readonly presets: string[];

  /** @param defaults The script's defaults. @param presets Its presets. */
  constructor(defaults: FlatConfig, presets?: Record<string, unknown>) {
    super("Usage requested (--help)");
    this.name = "HelpRequested";
    this.defaults = defaults;
    this.presets = presets === undefined ? [] : Object.keys(presets);
  }
}

/**
 * The usage text of a script: its module documentation (the `@module` doc comment of `source`),
 * then one line per option, `--key=default` and the comment that documents the key in `source`
 * (a trailing line comment or a doc comment above it), and the presets.
 *
 * @param source The script's source text.
 * @param help What {@linkcode parseConfig} threw.
 * @returns The text, without a final newline.
 */
export function usageText(source: string, help: HelpRequested): string {
  const header = /\/\*\*([\s\S]*?)\*\//.exec(source);
  const doc = header !== null && header[1].includes("@module")
    ? header[1].split("\n").map((l) => l.replace(/^\s*\* ?/, "")).filter((l) =>
      l.trim() !== "@module"
    ).join("\n").trim()
    : "";
  const options = Object.entries(help.defaults).map(([key, value]) => {
    const shown = `--${key}=${value === "" ? '""' : value}`;
    const note = optionNote(source, key);
    return note === "" ? `  ${shown}` : `  ${shown.padEnd(30)} ${note}`;
  });
  const presets = help.presets.length > 0
    ? [`Presets (--preset=NAME, applied before the other options): ${help.presets.join(", ")}`]
    : [];
  return [doc, "", "Options (--key=value, default shown):", ...options, ...presets].join("\n")
    .trim();
}

/** The comment documenting `key` in a script's defaults block, or "". */
function optionNote(source: string, key: string): string {
  const line = new RegExp(`^[ \\t]*${key}: .*?,[ \\t]*// (.*)$`, "m").exec(source);
  if (line !== null) return line[1].trim();
  const doc = new RegExp(`/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*\\n[ \\t]*${key}: `).exec(source);
  if (doc === null) return "";
  return doc[1].split("\n").map((l) => l.replace(/^\s*\* ?/, "").trim()).join(" ").trim();
}

/**
 * Ends the script for an error thrown by its configuration or its run, as {@linkcode runCli}
 * describes; rethrows an unexpected error.
 */
function exitFor(error: unknown): never {
  if (error instanceof HelpRequested) {
    let source = ""; // the script's own text, for its documentation; without it, the options
    try {
      source = Deno.readTextFileSync(new URL(Deno.mainModule));
    } catch {
      // not a readable local file
    }
    console.log(usageText(source, error));
    Deno.exit(0);
  }
  const line = cliErrorLine(error);
  if (line === undefined) throw error;
  console.error(line);
  Deno.exit(error instanceof TypeError || error instanceof RangeError ? 2 : 1);
}

/**
 * Runs a script's `main` with the command-line arguments and ends an expected failure with one
 * line on stderr and a non-zero exit status: 2 for a bad configuration (`TypeError`,
 * `RangeError`), 1 for the other expected failures ({@linkcode cliErrorLine}). Unexpected errors
 * propagate with their stack trace. `--help` prints the usage ({@linkcode usageText}) and exits 0.
 *
 * @param main The script's entry point.
 * @param args The arguments (default `Deno.args`).
 */
export async function runCli(
  main: (args: string[]) => Promise<unknown>,
  args: readonly string[] = Deno.args,
): Promise<void> {
  try {
    await main([...args]);
  } catch (e) {
    exitFor(e);
  }
}

/**
 * The configuration of a script whose body runs at top level (a benchmark read as one page):
 * {@linkcode parseConfig} of `Deno.args`, then `check`, with `--help` and a bad value handled as
 * {@linkcode runCli} handles them.
 *
 * @param defaults The typed default configuration.
 * @param check Validates the parsed configuration (throws `TypeError`/`RangeError`).
 * @returns The configuration.
 */
export function cliConfig<T extends FlatConfig>(
  defaults: T,
  check: (config: T) => void = () => {},
): T {
  try {
    const config = parseConfig(defaults, Deno.args);
    check(config);
    return config;
  } catch (e) {
    exitFor(e);
  }
}
