/**
 * Symbolic expressions: LaTeX -> a whitelisted mathjs expression tree, compared by evaluating
 * both sides on fixed pseudo-random points. Only operators, numbers, symbols and a fixed list of
 * functions are allowed, so evaluating an answer can never do anything but arithmetic.
 */
import {
  absDependencies,
  acosDependencies,
  addDependencies,
  asinDependencies,
  atanDependencies,
  cosDependencies,
  coshDependencies,
  cotDependencies,
  create,
  cscDependencies,
  divideDependencies,
  eDependencies,
  expDependencies,
  type FactoryFunctionMap,
  factorialDependencies,
  InfinityDependencies,
  log10Dependencies,
  logDependencies,
  type MathJsInstance,
  type MathNode,
  multiplyDependencies,
  nthRootDependencies,
  parseDependencies,
  piDependencies,
  powDependencies,
  secDependencies,
  sinDependencies,
  sinhDependencies,
  sqrtDependencies,
  subtractDependencies,
  tanDependencies,
  tanhDependencies,
  unaryMinusDependencies,
  unaryPlusDependencies,
} from "mathjs";
import { readArgument } from "./latex.ts";

let instance: MathJsInstance | null = null;

/** Creates and warms the CAS once per process (outside any verdict's time budget). */
export function warmUp(): void {
  math();
}

/** A mathjs instance with only what answers use (created on first use, so bundles without the verifier drop it). */
function math(): MathJsInstance {
  if (!instance) {
    const factories = {
      parseDependencies,
      addDependencies,
      subtractDependencies,
      multiplyDependencies,
      divideDependencies,
      powDependencies,
      unaryMinusDependencies,
      unaryPlusDependencies,
      sqrtDependencies,
      nthRootDependencies,
      logDependencies,
      log10Dependencies,
      expDependencies,
      sinDependencies,
      cosDependencies,
      tanDependencies,
      cotDependencies,
      secDependencies,
      cscDependencies,
      asinDependencies,
      acosDependencies,
      atanDependencies,
      sinhDependencies,
      coshDependencies,
      tanhDependencies,
      absDependencies,
      factorialDependencies,
      piDependencies,
      eDependencies,
      InfinityDependencies,
    } as FactoryFunctionMap;
    instance = create(factories, { number: "number" });
    // Warm up once, so the first verdict of a process does not pay for the JIT.
    instance.parse("sqrt(2)/x+sin(x)^2").compile().evaluate({ x: 0.5 });
  }
  return instance;
}

const FUNCTIONS: Record<string, string> = {
  sin: "sin",
  cos: "cos",
  tan: "tan",
  cot: "cot",
  sec: "sec",
  csc: "csc",
  arcsin: "asin",
  arccos: "acos",
  arctan: "atan",
  sinh: "sinh",
  cosh: "cosh",
  tanh: "tanh",
  ln: "log",
  log: "log10",
  exp: "exp",
  sqrt: "sqrt",
  abs: "abs",
};
const ALLOWED_FUNCTIONS = new Set([...Object.values(FUNCTIONS), "log", "nthRoot", "factorial"]);
const CONSTANTS = new Set(["pi", "e", "i", "Infinity"]);
const GREEK =
  /^(?:alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|rho|sigma|tau|upsilon|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Sigma|Phi|Psi|Omega)$/;

/** Maximum answer length that is parsed symbolically; longer answers are compared as strings. */
export const MAX_SYMBOLIC_CHARS = 400;
const MAX_DEPTH = 40;

class Unsupported extends Error {}

/**
 * Reads the argument of a function written without parentheses (`\sin x`, `\ln 2`, `\log_2 64`):
 * a (...) or {...} group, a number, one letter, or one command such as `\pi`.
 */
function readFunctionArgument(s: string, pos: number): [string, number] | null {
  let i = pos;
  while (s[i] === " ") i++;
  const c = s[i];
  if (c === undefined) return null;
  if (c === "(") {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      if (s[j] === "(") depth++;
      else if (s[j] === ")" && --depth === 0) return [s.slice(i + 1, j), j + 1];
    }
    return null;
  }
  if (c === "{" || c === "\\") return readArgument(s, i);
  const num = /^\d+(?:\.\d+)?/.exec(s.slice(i, i + 64));
  if (num) return [num[0], i + num[0].length];
  if (/[A-Za-z]/.test(c)) return [c, i + 1];
  return null;
}

function convert(s: string, depth: number): string {
  if (depth > MAX_DEPTH) throw new Unsupported("nesting too deep");
  let out = "";
  let i = 0;
  let absOpen = false;
  while (i < s.length) {
    const c = s[i]!;
    if (c === "\\") {
      const m = /^\\([A-Za-z]+)/.exec(s.slice(i, i + 32));
      if (!m) {
        if (s[i + 1] === "{" || s[i + 1] === "}") {
          out += s[i + 1] === "{" ? "(" : ")";
          i += 2;
          continue;
        }
        throw new Unsupported(`escape ${s.slice(i, i + 2)}`);
      }
      const name = m[1]!;
      i += m[0].length;
      if (name === "frac") {
        const a = readArgument(s, i);
        const b = a && readArgument(s, a[1]);
        if (!a || !b) throw new Unsupported("frac");
        out += `((${convert(a[0], depth + 1)})/(${convert(b[0], depth + 1)}))`;
        i = b[1];
      } else if (name === "sqrt") {
        let index: string | null = null;
        if (s[i] === "[") {
          const close = s.indexOf("]", i);
          if (close < 0) throw new Unsupported("sqrt index");
          index = s.slice(i + 1, close);
          i = close + 1;
        }
        const a = readArgument(s, i);
        if (!a) throw new Unsupported("sqrt");
        out += index
          ? `nthRoot((${convert(a[0], depth + 1)}),(${convert(index, depth + 1)}))`
          : `sqrt(${convert(a[0], depth + 1)})`;
        i = a[1];
      } else if (name === "log" && s[i] === "_") {
        const base = readArgument(s, i + 1);
        if (!base) throw new Unsupported("log base");
        const arg = readFunctionArgument(s, base[1]);
        if (!arg) throw new Unsupported("log argument");
        out += `log((${convert(arg[0], depth + 1)}),(${convert(base[0], depth + 1)}))`;
        i = arg[1];
      } else if (name in FUNCTIONS) {
        // \sin^2 x is (sin x)^2; \sin x and \ln 2 take the next token as their argument.
        let power: string | null = null;
        if (s[i] === "^") {
          const p = readArgument(s, i + 1);
          if (!p) throw new Unsupported("function power");
          power = convert(p[0], depth + 1);
          i = p[1];
        }
        const arg = readFunctionArgument(s, i);
        if (!arg) throw new Unsupported(`argument of \\${name}`);
        const call = `${FUNCTIONS[name]}(${convert(arg[0], depth + 1)})`;
        out += power === null ? ` ${call} ` : ` (${call})^(${power}) `;
        i = arg[1];
      } else if (name === "pi") out += " pi ";
      else if (name === "infty") out += " Infinity ";
      else if (name === "cdot" || name === "times") out += "*";
      else if (name === "div") out += "/";
      else if (GREEK.test(name)) out += ` ${name} `;
      else throw new Unsupported(`command \\${name}`);
      continue;
    }
    if (c === "{") {
      out += "(";
    } else if (c === "}") {
      out += ")";
    } else if (c === "[") {
      out += "(";
    } else if (c === "]") {
      out += ")";
    } else if (c === "|") {
      out += absOpen ? ")" : " abs(";
      absOpen = !absOpen;
    } else if (c === "_") {
      const sub = readArgument(s, i + 1);
      if (!sub || !/^[A-Za-z0-9]+$/.test(sub[0])) throw new Unsupported("subscript");
      out += `_${sub[0]}`;
      i = sub[1];
      continue;
    } else if (/[A-Za-z]/.test(c)) {
      const run = /^[A-Za-z]+/.exec(s.slice(i))![0];
      i += run.length;
      // Words are not products of variables: "red" is text, "xy" is x*y.
      if (run.length >= 3 && !(run in FUNCTIONS) && !CONSTANTS.has(run)) throw new Unsupported(`word ${run}`);
      if (run in FUNCTIONS || CONSTANTS.has(run)) out += ` ${FUNCTIONS[run] ?? run} `;
      else out += ` ${run.split("").join(" ")} `;
      // A single-letter variable before "(" multiplies; it is not a function call.
      if (!(run in FUNCTIONS) && (s[i] === "(" || s[i] === "{" || s[i] === "[")) out += "*";
      continue;
    } else {
      out += c;
    }
    i += 1;
  }
  if (absOpen) throw new Unsupported("unbalanced |");
  return out;
}

function checkTree(node: MathNode, vars: Set<string>): void {
  node.traverse((n, _path, parent) => {
    switch (n.type) {
      case "OperatorNode":
      case "ParenthesisNode":
      case "ConstantNode":
        return;
      case "SymbolNode": {
        const name = (n as unknown as { name: string }).name;
        const isCallee = parent?.type === "FunctionNode" && (parent as unknown as { fn: MathNode }).fn === n;
        if (isCallee) {
          if (!ALLOWED_FUNCTIONS.has(name)) throw new Unsupported(`function ${name}`);
        } else if (!CONSTANTS.has(name)) vars.add(name);
        return;
      }
      case "FunctionNode":
        return;
      default:
        throw new Unsupported(n.type);
    }
  });
}

export interface Expr {
  text: string;
  vars: string[];
  evaluate(scope: Record<string, number>): number | null;
}

function toReal(v: unknown): number | null {
  if (typeof v === "number") return Number.isNaN(v) ? null : v;
  if (v && typeof v === "object" && "re" in v && "im" in v) {
    const c = v as { re: number; im: number };
    return Math.abs(c.im) < 1e-12 ? c.re : null;
  }
  return null;
}

/** Parses a normalized LaTeX math string; null when it is not a supported expression. */
export function parseExpr(latex: string): Expr | null {
  if (latex.length === 0 || latex.length > MAX_SYMBOLIC_CHARS) return null;
  try {
    const text = convert(latex, 0);
    const node = math().parse(text);
    const vars = new Set<string>();
    checkTree(node, vars);
    const code = node.compile();
    return {
      text,
      vars: [...vars].sort(),
      evaluate(scope) {
        try {
          return toReal(code.evaluate({ ...scope }));
        } catch {
          return null;
        }
      },
    };
  } catch {
    return null;
  }
}

/** Fixed evaluation points: deterministic, irrational-looking, away from common poles. */
const POINTS = [
  0.5772156649, 1.6180339887, -0.8346268416, 2.2360679775, -1.3247179572, 0.3183098862, 3.3598856662,
];

export interface PointwiseResult {
  comparable: number;
  equal: boolean;
}

/**
 * Compares f and g on the fixed points: equal when every point where both are finite agrees within
 * `tolerance` (relative). `relation` may ask for g = k * f with one constant k (k > 0 when `positive`).
 */
export function comparePointwise(
  f: Expr,
  g: Expr,
  tolerance: number,
  mode: "equal" | "proportional" | "positive-proportional" = "equal",
): PointwiseResult {
  const names = [...new Set([...f.vars, ...g.vars])];
  let comparable = 0;
  let ratio: number | null = null;
  const points = names.length === 0 ? 1 : POINTS.length;
  for (let p = 0; p < points; p++) {
    const scope: Record<string, number> = {};
    names.forEach((name, k) => {
      scope[name] = POINTS[(p + 3 * k) % POINTS.length]! * (1 + k * 0.173);
    });
    const a = f.evaluate(scope);
    const b = g.evaluate(scope);
    if (a === null || b === null) continue;
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      if (a === b && mode === "equal") {
        comparable += 1;
        continue;
      }
      if (Number.isFinite(a) !== Number.isFinite(b)) return { comparable: comparable + 1, equal: false };
      continue;
    }
    comparable += 1;
    if (mode === "equal") {
      if (!close(a, b, tolerance)) return { comparable, equal: false };
    } else {
      if (Math.abs(a) < 1e-12 && Math.abs(b) < 1e-12) continue;
      if (Math.abs(a) < 1e-12 || Math.abs(b) < 1e-12) return { comparable, equal: false };
      const r = b / a;
      if (ratio === null) {
        if (mode === "positive-proportional" && r <= 0) return { comparable, equal: false };
        ratio = r;
      } else if (!close(r, ratio, tolerance)) return { comparable, equal: false };
    }
  }
  return { comparable, equal: comparable > 0 };
}

export function close(a: number, b: number, relative: number): boolean {
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  const scale = Math.max(Math.abs(a), Math.abs(b));
  return Math.abs(a - b) <= relative * Math.max(scale, 1e-12) || Math.abs(a - b) < 1e-12;
}
