/**
 * One value decoded from msgpack, as JSON text (no newlines in the output).
 *
 * - string, boolean, null, finite numbers: as `JSON.stringify` does; NaN and ±Infinity give `null`.
 * - bigint (msgpack integers beyond 2^53): its exact decimal digits as a JSON number, e.g. `18446744073709551615`
 *   (Python's `json` keeps it exact; JavaScript's `JSON.parse` rounds it).
 * - undefined, functions, symbols: `null` in arrays and at the top level; the key is omitted in objects and Maps.
 * - Uint8Array / Buffer (msgpack bin), ArrayBuffer, DataView: `{"$base64":"..."}`.
 * - Date (msgpack timestamp): its ISO string (`null` if invalid).
 * - Error: `{"name","message","stack"}`; RegExp: its source as a string (`"/a+/g"`).
 * - Map: an object whose keys are `String(key)` (a bigint key gives its digits); Set: an array.
 * - Other typed arrays (Float64Array etc.): an array of numbers (BigInt64Array, BigUint64Array: of bigint digits).
 * - Plain objects and arrays: recursively, in insertion order, with keys escaped as JSON strings.
 * - Compact, as `JSON.stringify` without indentation. Circular structures are not handled (msgpack has none).
 */
export function toJson(value: unknown): string {
  // The commonest results first: a finite number is its own text (JSON.stringify(-0) and String(-0) are both "0").
  if (typeof value === "number" && Number.isFinite(value)) return numberText(value);
  // Most values are plain JSON already: JSON.stringify writes those natively, a million results in a second.
  if (plain(value, 0)) return JSON.stringify(value);
  return encode(value) ?? "null";
}

const ZEROS = ["", "0", "00", "000", "0000", "00000"];

/**
 * A finite number's text, as String gives it. An integer of 10 digits or
 * more (a time in milliseconds: every row of `results` has two) is written
 * as two small integers, which V8 turns into text several times faster
 * than one large one.
 */
export function numberText(n: number): string {
  if (n >= 1e9 && n <= Number.MAX_SAFE_INTEGER && Number.isInteger(n)) {
    const high = Math.floor(n / 1e6);
    const low = String(n - high * 1e6);
    return `${high}${ZEROS[6 - low.length]}${low}`;
  }
  return String(n);
}

/** Whether JSON.stringify writes `value` as toJson would: finite numbers, strings, booleans, null, and plain arrays and objects of them (not too deep to check). */
function plain(value: unknown, depth: number): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (typeof value !== "object" || depth > 32) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!(i in value) || !plain(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) if (!plain((value as Record<string, unknown>)[key], depth + 1)) return false;
  return true;
}

/** JSON text of `value`, or undefined where JSON.stringify would drop it (undefined, function, symbol). */
function encode(value: unknown): string | undefined {
  if (value === undefined || typeof value === "function" || typeof value === "symbol") return undefined;
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (value instanceof Uint8Array) return base64(value);
  if (value instanceof ArrayBuffer) return base64(new Uint8Array(value));
  if (value instanceof DataView) return base64(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  if (ArrayBuffer.isView(value)) return array(Array.from(value as unknown as ArrayLike<number | bigint>));
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "null" : JSON.stringify(value.toISOString());
  if (value instanceof Map) return object(Array.from(value, ([key, item]) => [String(key), item]));
  if (value instanceof Set) return array(Array.from(value));
  if (Array.isArray(value)) return array(value);
  if (value instanceof Error)
    return object([
      ["name", value.name],
      ["message", value.message],
      ["stack", value.stack],
    ]);
  if (value instanceof RegExp) return JSON.stringify(String(value));
  return object(Object.entries(value));
}

function base64(bytes: Uint8Array): string {
  return `{"$base64":"${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")}"}`;
}

/** Array.from visits holes too, so a sparse array cannot give `[,]`. */
function array(items: ArrayLike<unknown>): string {
  return `[${Array.from(items, (item) => encode(item) ?? "null").join(",")}]`;
}

function object(entries: [string, unknown][]): string {
  const members = entries.flatMap(([key, item]) => {
    const text = encode(item);
    return text === undefined ? [] : [`${JSON.stringify(key)}:${text}`];
  });
  return `{${members.join(",")}}`;
}
