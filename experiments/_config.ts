/**
 * The one configuration parser of the experiment scripts, nanoGPT style: a script opens with a
 * typed block of defaults (and optional presets), {@linkcode parseConfig} applies `--key=value`
 * overrides type-checked against the defaults, the script validates every value with the checks
 * below BEFORE any work, and {@linkcode runCli} ends an expected failure with one clean line.
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
 * other overrides on top of it.
 *
 * @param defaults The typed default configuration.
 * @param args The command-line arguments.
 * @param presets Named partial configurations (needs a string key `preset` in `defaults`).
 * @returns The configuration.
 * @throws {TypeError} On a positional argument, an unknown or repeated key, an empty value, or a
 * value that does not parse as the default's type; on an unknown preset or a preset that sets a key
 * `defaults` lacks.
 */
export function parseConfig<T extends FlatConfig>(
  defaults: T,
  args: readonly string[],
  presets?: Record<string, Partial<T>>,
): T {
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
 * Runs a script's `main` with the command-line arguments and ends an expected failure with one
 * line on stderr and a non-zero exit status: 2 for a bad configuration (`TypeError`,
 * `RangeError`), 1 for the other expected failures ({@linkcode cliErrorLine}). Unexpected errors
 * propagate with their stack trace.
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
    const line = cliErrorLine(e);
    if (line === undefined) throw e;
    console.error(line);
    Deno.exit(e instanceof TypeError || e instanceof RangeError ? 2 : 1);
  }
}
