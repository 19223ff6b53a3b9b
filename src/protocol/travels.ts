// What can travel through slurmkit's msgpack (codec.ts) and come back equal: the rule behind the README's table.

/** Built-in classes whose instances travel, with their prototype. */
const TRAVELLING_CLASSES: readonly (abstract new (...args: never[]) => unknown)[] = [
  Date,
  RegExp,
  Map,
  Set,
  ArrayBuffer,
  DataView,
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];

/** The standard Error classes, which come back as themselves (name, message and cause; not the stack). */
const ERRORS: readonly (new (...args: never[]) => Error)[] = [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError];

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

const key = (path: string, k: string) => (IDENTIFIER.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`);

/** A Map key as it reads in a message. */
function label(k: unknown): string {
  if (typeof k === "string") return JSON.stringify(k);
  if (typeof k === "object" && k !== null) return Array.isArray(k) ? "an array" : "an object";
  return typeof k === "function" ? "a function" : String(k);
}

function classProblem(value: object): string | undefined {
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto === Object.prototype || proto === null || Array.isArray(value)) return undefined;
  if (Buffer.isBuffer(value)) return undefined;
  if (TRAVELLING_CLASSES.some((c) => proto === c.prototype)) return undefined;
  if (ERRORS.some((c) => proto === c.prototype)) return Object.keys(value).length ? "an Error with properties of its own, which would be lost (only name, message and cause travel)" : undefined;
  const name = (proto as { constructor?: { name?: string } }).constructor?.name || "an unnamed class";
  if (value instanceof Promise) return "a Promise: await it before submitting";
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return `a boxed ${name}: pass the primitive value`;
  return `an instance of ${name}, whose class would be lost (it would come back as a plain object): pass plain data (objects, arrays, Map, Set, Date...)`;
}

/**
 * Why `value` cannot travel to a node and come back equal, naming where in
 * it (`arg.f is a function`), or undefined when it can. Refused: functions,
 * symbols (as values or keys), cycles, array holes, and instances of classes
 * other than the built-ins that travel. Primitives return at once.
 */
export function travelProblem(value: unknown, path = "arg"): string | undefined {
  return walk(value, path, []);
}

function walk(value: unknown, path: string, ancestors: object[]): string | undefined {
  if (typeof value === "function") return `\`${path}\` is a function, which cannot travel to a node: pass data, and do the work in the task`;
  if (typeof value === "symbol") return `\`${path}\` is a symbol, which cannot travel to a node`;
  if (typeof value !== "object" || value === null) return undefined;
  if (ancestors.includes(value)) return `\`${path}\` refers back to an object that contains it (a cycle), which msgpack cannot write`;
  const problem = classProblem(value);
  if (problem) return `\`${path}\` is ${problem}`;
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return `\`${path}\` has a hole at index ${i}, which would come back as undefined: fill it`;
        const p = walk(value[i], `${path}[${i}]`, ancestors);
        if (p) return p;
      }
      return undefined;
    }
    if (value instanceof Map) {
      for (const [k, v] of value) {
        const p = walk(k, `${path} key ${label(k)}`, ancestors) ?? walk(v, `${path}.get(${label(k)})`, ancestors);
        if (p) return p;
      }
      return undefined;
    }
    if (value instanceof Set) {
      let i = 0;
      for (const item of value) {
        const p = walk(item, `${path} item ${i++}`, ancestors);
        if (p) return p;
      }
      return undefined;
    }
    if (value instanceof Error) return walk((value as { cause?: unknown }).cause, `${path}.cause`, ancestors);
    if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return undefined; // Date, RegExp, bytes
    const symbols = Object.getOwnPropertySymbols(value).filter((s) => Object.prototype.propertyIsEnumerable.call(value, s));
    if (symbols.length) return `\`${path}\` has a symbol key (${String(symbols[0])}), which would be dropped`;
    for (const k of Object.keys(value)) {
      const p = walk((value as Record<string, unknown>)[k], key(path, k), ancestors);
      if (p) return p;
    }
    return undefined;
  } finally {
    ancestors.pop();
  }
}
