/**
 * A strict JSON reader for safetensors headers: what `serde_json` (the reference `safetensors`
 * library's parser) refuses in a header, this refuses too — duplicate keys (which `JSON.parse`
 * silently resolves to the last), numbers that are not non-negative integer literals (`1.0`,
 * `1e0`, `-0`: every number of a header is a `usize`), a byte-order mark or other non-JSON whitespace, nesting deeper
 * than 128. Objects are `Object.create(null)` maps, so a key `__proto__` is an ordinary key.
 * Messages are bounded: echoed text is cut with {@linkcode preview}.
 *
 * @module
 */

const MAX_DEPTH = 128;
const PREVIEW_CHARS = 48;

/** `text` cut to a few dozen characters (with its full length named), for error messages. */
export function preview(text: string): string {
  if (text.length <= PREVIEW_CHARS) return text;
  return `${text.slice(0, PREVIEW_CHARS)}… (${text.length} characters)`;
}

/** `JSON.stringify(value)` cut by {@linkcode preview} (never throws, never huge). */
export function previewJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  return preview(text ?? String(value));
}

/** A JSON value as this reader returns it (objects have a null prototype). */
export type StrictJson = null | boolean | number | string | StrictJson[] | {
  [key: string]: StrictJson;
};

/**
 * Parses `text` strictly (see the module documentation).
 *
 * @param text The JSON text.
 * @returns The value.
 * @throws {SyntaxError} Naming the problem and its character offset.
 */
export function parseStrictJson(text: string): StrictJson {
  let at = 0;
  const fail = (problem: string): never => {
    throw new SyntaxError(`${problem} at character ${at}`);
  };
  const skipSpace = () => {
    while (at < text.length) {
      const c = text.charCodeAt(at);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      at++;
    }
  };
  const parseString = (): string => {
    at++; // opening quote
    let out = "";
    let start = at;
    while (true) {
      if (at >= text.length) fail("unterminated string");
      const c = text.charCodeAt(at);
      if (c === 0x22) {
        out += text.slice(start, at);
        at++;
        return out;
      }
      if (c < 0x20) fail(`control character U+${c.toString(16).padStart(4, "0")} in a string`);
      if (c !== 0x5c) {
        at++;
        continue;
      }
      out += text.slice(start, at);
      const e = text[at + 1];
      const simple: Record<string, string> = {
        '"': '"',
        "\\": "\\",
        "/": "/",
        b: "\b",
        f: "\f",
        n: "\n",
        r: "\r",
        t: "\t",
      };
      if (e !== undefined && Object.hasOwn(simple, e)) {
        out += simple[e];
        at += 2;
      } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(at + 2, at + 6))) {
        out += String.fromCharCode(parseInt(text.slice(at + 2, at + 6), 16));
        at += 6;
      } else {
        fail(`invalid escape ${preview(JSON.stringify(text.slice(at, at + 6)))}`);
      }
      start = at;
    }
  };
  const parseNumber = (): number => {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(at, at + 400));
    if (match === null || match[0] === "-") fail("invalid number");
    const literal = match![0];
    if (match![2] !== undefined || match![3] !== undefined || literal.startsWith("-")) {
      fail(`number ${preview(literal)} is not a non-negative integer literal`);
    }
    const value = Number(literal);
    if (!Number.isSafeInteger(value)) fail(`integer ${preview(literal)} is too large`);
    at += literal.length;
    return value;
  };
  // After an object member or array element: a comma (consumed, false) or the closing bracket
  // (consumed, true); anything else fails.
  const closes = (close: "}" | "]"): boolean => {
    skipSpace();
    if (text[at] === ",") {
      at++;
      return false;
    }
    if (text[at] !== close) fail(`expected ',' or '${close}'`);
    at++;
    return true;
  };
  const parseValue = (depth: number): StrictJson => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
    skipSpace();
    const c = text[at];
    if (c === "{") {
      at++;
      const object: { [key: string]: StrictJson } = Object.create(null);
      skipSpace();
      if (text[at] === "}") {
        at++;
        return object;
      }
      while (true) {
        skipSpace();
        if (text[at] !== '"') fail("expected a string key");
        const keyAt = at;
        const key = parseString();
        if (Object.hasOwn(object, key)) {
          at = keyAt;
          fail(`duplicate key ${preview(JSON.stringify(key))}`);
        }
        skipSpace();
        if (text[at] !== ":") fail("expected ':'");
        at++;
        object[key] = parseValue(depth + 1);
        if (closes("}")) return object;
      }
    }
    if (c === "[") {
      at++;
      const array: StrictJson[] = [];
      skipSpace();
      if (text[at] === "]") {
        at++;
        return array;
      }
      while (true) {
        array.push(parseValue(depth + 1));
        if (closes("]")) return array;
      }
    }
    if (c === '"') return parseString();
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return parseNumber();
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return value;
      }
    }
    return fail(
      c === undefined
        ? "unexpected end of input"
        : `unexpected character ${JSON.stringify(c)} (U+${
          c.charCodeAt(0).toString(16).padStart(4, "0")
        })`,
    );
  };
  const value = parseValue(0);
  skipSpace();
  if (at < text.length) fail("unexpected text after the JSON value");
  return value;
}
