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
  const problem = walk(value, []);
  return problem && `\`${path}${problem.where.reverse().join("")}\` ${problem.what}`;
}

/** What is wrong, and where: the path's steps from the value found back up to the root (added on the way out, so a value that travels builds no strings). */
interface Problem {
  readonly what: string;
  readonly where: string[];
}

const at = (problem: Problem | undefined, step: string): Problem | undefined => {
  problem?.where.push(step);
  return problem;
};

function walk(value: unknown, ancestors: object[]): Problem | undefined {
  if (typeof value === "function") return { what: "is a function, which cannot travel to a node: pass data, and do the work in the task", where: [] };
  if (typeof value === "symbol") return { what: "is a symbol, which cannot travel to a node", where: [] };
  if (typeof value !== "object" || value === null) return undefined;
  if (ancestors.includes(value)) return { what: "refers back to an object that contains it (a cycle), which msgpack cannot write", where: [] };
  const problem = classProblem(value);
  if (problem) return { what: `is ${problem}`, where: [] };
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return { what: `has a hole at index ${i}, which would come back as undefined: fill it`, where: [] };
        const p = walk(value[i], ancestors);
        if (p) return at(p, `[${i}]`);
      }
      return undefined;
    }
    if (value instanceof Map) {
      for (const [k, v] of value) {
        const p = at(walk(k, ancestors), ` key ${label(k)}`) ?? at(walk(v, ancestors), `.get(${label(k)})`);
        if (p) return p;
      }
      return undefined;
    }
    if (value instanceof Set) {
      let i = 0;
      for (const item of value) {
        const p = walk(item, ancestors);
        if (p) return at(p, ` item ${i}`);
        i++;
      }
      return undefined;
    }
    if (value instanceof Error) return at(walk((value as { cause?: unknown }).cause, ancestors), ".cause");
    if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return undefined; // Date, RegExp, bytes
    const own = Object.getOwnPropertySymbols(value);
    const symbol = own.length ? own.find((s) => Object.prototype.propertyIsEnumerable.call(value, s)) : undefined;
    if (symbol !== undefined) return { what: `has a symbol key (${String(symbol)}), which would be dropped`, where: [] };
    // JSON.parse makes such a key; msgpackr would not write it back as one.
    if (Object.hasOwn(value, "__proto__")) return { what: "has an own `__proto__` key, which would not come back as one", where: [] };
    for (const k in value) {
      if (!Object.hasOwn(value, k)) continue;
      const p = walk((value as Record<string, unknown>)[k], ancestors);
      if (p) return at(p, IDENTIFIER.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`);
    }
    return undefined;
  } finally {
    ancestors.pop();
  }
}
