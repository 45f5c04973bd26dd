/**
 * Symbolic expressions: LaTeX -> a whitelisted expression tree (parsed by mathjs, then copied into
 * our own small tree), compared exactly when both sides are exact numbers and otherwise by
 * evaluating both sides on fixed points.
 *
 * Evaluation is our own: exact rationals over BigInt where possible, complex doubles otherwise, with
 * every node counted against the item's step budget (so a verdict never depends on the clock) and
 * every overflow or underflow of the float range flagged (so two values too small or too large to
 * tell apart are refused, never "equal because both round to 0").
 */
import {
  create,
  type FactoryFunctionMap,
  type MathJsInstance,
  type MathNode,
  parseDependencies,
} from "mathjs";
import type { Budget } from "./budget.ts";
import { readArgument } from "./latex.ts";
import { MAX_EXACT_DIGITS, Rational } from "./rational.ts";

let instance: MathJsInstance | null = null;

/** Creates and warms the parser once per process. */
export function warmUp(): void {
  math();
}

/** A mathjs instance with the parser only: evaluation is ours (created on first use, so bundles without the verifier drop it). */
function math(): MathJsInstance {
  if (!instance) {
    instance = create({ parseDependencies } as FactoryFunctionMap, { number: "number" });
    instance.parse("sqrt(2)/x+sin(x)^2");
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

/** Our expression tree: what the verifier can evaluate, and nothing else. */
export type Node =
  | { k: "num"; value: number; exact: Rational | null }
  | { k: "const"; name: "pi" | "e" | "i" | "Infinity" }
  | { k: "var"; name: string }
  | { k: "op"; op: "+" | "-" | "*" | "/" | "^"; a: Node; b: Node }
  | { k: "neg"; a: Node }
  | { k: "fn"; name: string; args: Node[] };

const OPERATORS: Record<string, "+" | "-" | "*" | "/" | "^"> = {
  add: "+",
  subtract: "-",
  multiply: "*",
  divide: "/",
  pow: "^",
};

function literal(value: number): Node {
  // A literal is exact when its shortest decimal form is what was written (integers up to 2^53).
  const exact =
    Number.isFinite(value) && (!Number.isInteger(value) || Number.isSafeInteger(value))
      ? Rational.parseDecimal(String(value))
      : null;
  return { k: "num", value, exact };
}

/** Copies a mathjs tree into ours, refusing anything outside the whitelist. */
function fromMath(n: MathNode, vars: Set<string>): Node {
  const any = n as unknown as {
    type: string;
    value?: unknown;
    name?: string;
    fn?: unknown;
    op?: string;
    args?: MathNode[];
    content?: MathNode;
  };
  switch (any.type) {
    case "ConstantNode":
      if (typeof any.value !== "number") throw new Unsupported("constant");
      return literal(any.value);
    case "ParenthesisNode":
      return fromMath(any.content!, vars);
    case "SymbolNode": {
      const name = any.name!;
      if (CONSTANTS.has(name)) return { k: "const", name: name as "pi" | "e" | "i" | "Infinity" };
      vars.add(name);
      return { k: "var", name };
    }
    case "OperatorNode": {
      const fn = any.fn as string;
      const args = any.args ?? [];
      if (fn === "unaryMinus" && args.length === 1) return { k: "neg", a: fromMath(args[0]!, vars) };
      if (fn === "unaryPlus" && args.length === 1) return fromMath(args[0]!, vars);
      if (fn === "factorial" && args.length === 1)
        return { k: "fn", name: "factorial", args: [fromMath(args[0]!, vars)] };
      const op = OPERATORS[fn];
      if (!op || args.length !== 2) throw new Unsupported(`operator ${fn}`);
      return { k: "op", op, a: fromMath(args[0]!, vars), b: fromMath(args[1]!, vars) };
    }
    case "FunctionNode": {
      const callee = any.fn as { type?: string; name?: string };
      if (callee?.type !== "SymbolNode" || !ALLOWED_FUNCTIONS.has(callee.name!)) {
        throw new Unsupported(`function ${callee?.name}`);
      }
      return { k: "fn", name: callee.name!, args: (any.args ?? []).map((a) => fromMath(a, vars)) };
    }
    default:
      throw new Unsupported(any.type);
  }
}

export interface Expr {
  text: string;
  vars: string[];
  node: Node;
}

/** Parses a normalized LaTeX math string; null when it is not a supported expression. */
export function parseExpr(latex: string): Expr | null {
  if (latex.length === 0 || latex.length > MAX_SYMBOLIC_CHARS) return null;
  try {
    const text = convert(latex, 0);
    const vars = new Set<string>();
    const node = fromMath(math().parse(text), vars);
    return { text, vars: [...vars].sort(), node };
  } catch {
    return null;
  }
}

/** The expression `l - r` (for equations and inequalities, compared as `lhs - rhs`). */
export function diffExpr(l: Expr, r: Expr): Expr {
  return {
    text: `(${l.text})-(${r.text})`,
    vars: [...new Set([...l.vars, ...r.vars])].sort(),
    node: { k: "op", op: "-", a: l.node, b: r.node },
  };
}

/** A constant expression standing for a number value. */
export function numberExpr(value: number, exact: Rational | null): Expr {
  return { text: String(value), vars: [], node: { k: "num", value, exact } };
}

// ---------------------------------------------------------------------------------------------
// Exact evaluation: rationals over BigInt, for constant expressions built from +, -, *, /,
// integer powers, factorials and square roots of perfect squares. Null when not exact.

function digits(r: Rational): number {
  const n = r.num < 0n ? -r.num : r.num;
  return Math.max(n.toString(16).length, r.den.toString(16).length) * 1.21; // hex digits -> decimal
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  for (let k = 0; k < 200; k++) {
    const y = (x + n / x) >> 1n;
    if (y >= x && x * x <= n && (x + 1n) * (x + 1n) > n) return x;
    x = y;
  }
  return x;
}

function exactSqrt(r: Rational): Rational | null {
  if (r.num < 0n) return null;
  const a = isqrt(r.num);
  const b = isqrt(r.den);
  return a * a === r.num && b * b === r.den ? new Rational(a, b) : null;
}

/** The exact value of a constant expression, or null (not exact, or beyond MAX_EXACT_DIGITS). */
export function exactValue(node: Node, budget: Budget): Rational | null {
  budget.spend(1);
  switch (node.k) {
    case "num":
      return node.exact;
    case "const":
    case "var":
      return null;
    case "neg": {
      const a = exactValue(node.a, budget);
      return a ? a.neg() : null;
    }
    case "op": {
      const a = exactValue(node.a, budget);
      if (!a) return null;
      const b = exactValue(node.b, budget);
      if (!b) return null;
      budget.spend(Math.ceil((digits(a) + digits(b)) / 64));
      switch (node.op) {
        case "+":
          return a.add(b);
        case "-":
          return a.add(b.neg());
        case "*":
          return a.mul(b);
        case "/":
          return a.div(b);
        case "^": {
          if (!b.isInteger()) return null;
          budget.spend(Math.ceil(Math.min(digits(a) * Math.abs(Number(b.num)), MAX_EXACT_DIGITS) / 16));
          return a.pow(b.num);
        }
      }
      return null;
    }
    case "fn": {
      if (node.args.length !== 1) return null;
      const a = exactValue(node.args[0]!, budget);
      if (!a) return null;
      if (node.name === "sqrt") return exactSqrt(a);
      if (node.name === "abs") return a.num < 0n ? a.neg() : a;
      if (node.name === "factorial") {
        if (!a.isInteger() || a.num < 0n) return null;
        const n = Number(a.num);
        // log10(n!) < n * log10(n): stay within the digit bound before computing anything.
        if (n > 1 && n * Math.log10(n) > MAX_EXACT_DIGITS * 1.3) return null;
        budget.spend(n);
        let f = 1n;
        for (let k = 2n; k <= a.num; k++) f *= k;
        return new Rational(f);
      }
      return null;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Float evaluation over complex doubles, with range checks.

interface C {
  re: number;
  im: number;
}

export interface Evaluation {
  value: C;
  /** The largest magnitude that was added or subtracted: the size of a rounding residue after cancellation. */
  scale: number;
  /** An intermediate result overflowed or underflowed the float range: the value cannot be trusted. */
  outOfRange: boolean;
}

const MIN_NORMAL = 2.2250738585072014e-308;

function mod(z: C): number {
  return z.im === 0 ? Math.abs(z.re) : Math.hypot(z.re, z.im);
}

function finite(z: C): boolean {
  return Number.isFinite(z.re) && Number.isFinite(z.im);
}

function real(x: number): C {
  return { re: x, im: 0 };
}

function cmul(a: C, b: C): C {
  if (a.im === 0 && b.im === 0) return real(a.re * b.re);
  return { re: a.re * b.re - a.im * b.im, im: a.re * b.im + a.im * b.re };
}

function cdiv(a: C, b: C): C {
  if (a.im === 0 && b.im === 0) return real(a.re / b.re);
  const d = b.re * b.re + b.im * b.im;
  return { re: (a.re * b.re + a.im * b.im) / d, im: (a.im * b.re - a.re * b.im) / d };
}

function cexp(z: C): C {
  if (z.im === 0) return real(Math.exp(z.re));
  const r = Math.exp(z.re);
  return { re: r * Math.cos(z.im), im: r * Math.sin(z.im) };
}

function clog(z: C): C {
  return { re: Math.log(mod(z)), im: Math.atan2(z.im, z.re) };
}

/** The odd denominator q (up to 9) of an exponent p/q, with p, when the exponent is such a fraction. */
function oddFraction(x: number): [number, number] | null {
  for (let q = 3; q <= 9; q += 2) {
    const p = Math.round(x * q);
    if (Math.abs(x * q - p) <= 1e-9 * q) return [p, q];
  }
  return null;
}

function cpow(a: C, b: C): C {
  if (a.im === 0 && b.im === 0 && (a.re >= 0 || Number.isInteger(b.re))) return real(a.re ** b.re);
  if (a.im === 0 && b.im === 0 && a.re < 0) {
    // A power p/q with q odd is the real q-th root of a negative base, as \sqrt[q]{x} is: x^{2/3} = \sqrt[3]{x}^2.
    const frac = oddFraction(b.re);
    if (frac) return real((frac[0] % 2 === 0 ? 1 : -1) * (-a.re) ** b.re);
  }
  if (b.im === 0 && Number.isInteger(b.re) && Math.abs(b.re) <= 64) {
    let result = real(1);
    for (let k = 0; k < Math.abs(b.re); k++) result = cmul(result, a);
    return b.re < 0 ? cdiv(real(1), result) : result;
  }
  if (a.re === 0 && a.im === 0) return real(0);
  return cexp(cmul(b, clog(a)));
}

function csqrt(z: C): C {
  if (z.im === 0) return z.re >= 0 ? real(Math.sqrt(z.re)) : { re: 0, im: Math.sqrt(-z.re) };
  const r = mod(z);
  const re = Math.sqrt((r + z.re) / 2);
  const im = Math.sign(z.im) * Math.sqrt((r - z.re) / 2);
  return { re, im };
}

const REAL_FUNCTIONS: Record<string, (x: number) => number> = {
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  cot: (x) => 1 / Math.tan(x),
  sec: (x) => 1 / Math.cos(x),
  csc: (x) => 1 / Math.sin(x),
  asin: Math.asin,
  acos: Math.acos,
  atan: Math.atan,
  sinh: Math.sinh,
  cosh: Math.cosh,
  tanh: Math.tanh,
  log10: (x) => (x > 0 ? Math.log10(x) : Number.NaN),
};

function floatFactorial(n: number): number {
  if (!Number.isInteger(n) || n < 0) return Number.NaN;
  if (n > 170) return Number.POSITIVE_INFINITY;
  let f = 1;
  for (let k = 2; k <= n; k++) f *= k;
  return f;
}

class Evaluator {
  scale = 0;
  outOfRange = false;
  constructor(
    private readonly scope: Readonly<Record<string, number>>,
    private readonly budget: Budget,
  ) {}

  /** Flags a result that left the float range although its operands were in it. */
  private checked(result: C, operands: C[]): C {
    if (operands.every(finite)) {
      if (!finite(result) && !Number.isNaN(result.re) && !Number.isNaN(result.im)) this.outOfRange = true;
      const m = mod(result);
      const nonzeroOperands = operands.every((o) => mod(o) !== 0);
      if ((m === 0 && nonzeroOperands) || (m !== 0 && m < MIN_NORMAL)) this.outOfRange = true;
    }
    return result;
  }

  eval(node: Node): C {
    this.budget.spend(1);
    switch (node.k) {
      case "num":
        return real(node.value);
      case "const":
        if (node.name === "i") return { re: 0, im: 1 };
        return real(node.name === "pi" ? Math.PI : node.name === "e" ? Math.E : Number.POSITIVE_INFINITY);
      case "var":
        return real(this.scope[node.name] ?? Number.NaN);
      case "neg": {
        const a = this.eval(node.a);
        return { re: -a.re, im: -a.im };
      }
      case "op": {
        const a = this.eval(node.a);
        const b = this.eval(node.b);
        switch (node.op) {
          case "+":
          case "-": {
            this.scale = Math.max(this.scale, mod(a), mod(b));
            const sign = node.op === "+" ? 1 : -1;
            return { re: a.re + sign * b.re, im: a.im + sign * b.im };
          }
          case "*":
            return this.checked(cmul(a, b), [a, b]);
          case "/":
            if (mod(b) === 0)
              return real(mod(a) === 0 ? Number.NaN : Number.POSITIVE_INFINITY * Math.sign(a.re || 1));
            return this.checked(cdiv(a, b), [a, b]);
          case "^":
            return this.checked(cpow(a, b), [a, b]);
        }
        return real(Number.NaN);
      }
      case "fn": {
        const args = node.args.map((a) => this.eval(a));
        const x = args[0];
        if (!x) return real(Number.NaN);
        switch (node.name) {
          case "sqrt":
            return csqrt(x);
          case "exp":
            return this.checked(cexp(x), [x]);
          case "abs":
            return real(mod(x));
          case "factorial":
            return x.im === 0 ? this.checked(real(floatFactorial(x.re)), [x]) : real(Number.NaN);
          case "log": {
            const base = args[1];
            const ln = x.im === 0 && x.re > 0 ? real(Math.log(x.re)) : clog(x);
            if (!base) return ln;
            return cdiv(ln, base.im === 0 && base.re > 0 ? real(Math.log(base.re)) : clog(base));
          }
          case "nthRoot": {
            const n = args[1];
            if (n === undefined || n.im !== 0 || x.im !== 0) return real(Number.NaN);
            if (x.re < 0 && Number.isInteger(n.re) && n.re % 2 !== 0) return real(-((-x.re) ** (1 / n.re)));
            return cpow(x, real(1 / n.re));
          }
          default: {
            const f = REAL_FUNCTIONS[node.name];
            if (!f || x.im !== 0) return real(Number.NaN);
            return this.checked(real(f(x.re)), [x]);
          }
        }
      }
    }
  }
}

/** Evaluates an expression at a point; counts every node against the budget. */
export function evaluate(expr: Expr, scope: Readonly<Record<string, number>>, budget: Budget): Evaluation {
  const ev = new Evaluator(scope, budget);
  const value = ev.eval(expr.node);
  const m = mod(value);
  if (m !== 0 && m < MIN_NORMAL) ev.outOfRange = true;
  return { value, scale: ev.scale, outOfRange: ev.outOfRange };
}

/** A real value of a constant expression (NaN when complex or undefined), for range checks by callers. */
export function realValue(expr: Expr, budget: Budget): number {
  const e = evaluate(expr, {}, budget);
  if (e.outOfRange || Math.abs(e.value.im) > 1e-12 * Math.max(1, Math.abs(e.value.re))) return Number.NaN;
  return e.value.re;
}

/** Fixed evaluation points: deterministic, irrational-looking, away from common poles. */
const POINTS = [
  0.5772156649, 1.6180339887, -0.8346268416, 2.2360679775, -1.3247179572, 0.3183098862, 3.3598856662,
];

export interface PointwiseResult {
  comparable: number;
  equal: boolean;
  /** A side left the float range: nothing was compared (refused, not "different"). */
  refused: boolean;
}

/** Rounding residue allowed after cancellation, relative to the largest term added or subtracted. */
const CANCELLATION = 1e-12;

/**
 * Compares f and g. Constant expressions that are both exact compare exactly (unless `exact` is false:
 * a decimal side is an approximation). Otherwise both are
 * evaluated on the fixed points: equal when every point where both are finite agrees within
 * `tolerance` (relative). `mode` may ask for g = k * f with one constant k (k > 0 when `positive`).
 * A point where either side over- or underflows is not compared; when that leaves nothing, the
 * comparison is refused.
 */
export function comparePointwise(
  f: Expr,
  g: Expr,
  tolerance: number,
  mode: "equal" | "proportional" | "positive-proportional",
  budget: Budget,
  exact = true,
): PointwiseResult {
  const names = [...new Set([...f.vars, ...g.vars])];
  if (exact && names.length === 0 && mode === "equal") {
    const a = exactValue(f.node, budget);
    const b = a && exactValue(g.node, budget);
    if (a && b) return { comparable: 1, equal: a.equals(b), refused: false };
  }
  let comparable = 0;
  let refused = false;
  let ratio: number | null = null;
  const points = names.length === 0 ? 1 : POINTS.length;
  for (let p = 0; p < points; p++) {
    const scope: Record<string, number> = {};
    names.forEach((name, k) => {
      scope[name] = POINTS[(p + 3 * k) % POINTS.length]! * (1 + k * 0.173);
    });
    const ea = evaluate(f, scope, budget);
    const eb = evaluate(g, scope, budget);
    const [a, b] = [ea.value, eb.value];
    if ([a.re, a.im, b.re, b.im].some(Number.isNaN)) continue;
    if (ea.outOfRange || eb.outOfRange) {
      refused = true;
      continue;
    }
    if (!finite(a) || !finite(b)) {
      if (a.re === b.re && a.im === b.im && mode === "equal") {
        comparable += 1;
        continue;
      }
      if (finite(a) !== finite(b)) return { comparable: comparable + 1, equal: false, refused: false };
      continue;
    }
    comparable += 1;
    const floor = CANCELLATION * Math.max(ea.scale, eb.scale);
    if (mode === "equal") {
      if (!closeComplex(a, b, tolerance, floor)) return { comparable, equal: false, refused: false };
      continue;
    }
    // Proportional modes compare real values only.
    if (Math.abs(a.im) > floor || Math.abs(b.im) > floor) return { comparable, equal: false, refused: false };
    const [x, y] = [a.re, b.re];
    const zeroX = Math.abs(x) <= Math.max(floor, 1e-300);
    const zeroY = Math.abs(y) <= Math.max(floor, 1e-300);
    if (zeroX && zeroY) continue;
    if (zeroX || zeroY) return { comparable, equal: false, refused: false };
    const r = y / x;
    if (ratio === null) {
      if (mode === "positive-proportional" && r <= 0) return { comparable, equal: false, refused: false };
      ratio = r;
    } else if (!close(r, ratio, tolerance)) return { comparable, equal: false, refused: false };
  }
  return { comparable, equal: comparable > 0, refused: comparable === 0 && refused };
}

function closeComplex(a: C, b: C, relative: number, floor: number): boolean {
  if (a.re === b.re && a.im === b.im) return true;
  const diff = Math.hypot(a.re - b.re, a.im - b.im);
  return diff <= relative * Math.max(mod(a), mod(b)) || diff <= floor;
}

/**
 * Relative closeness of two finite numbers: never an absolute tolerance, so two different tiny values
 * are never "close" because both are near 0. Exact zero equals only exact zero.
 */
export function close(a: number, b: number, relative: number): boolean {
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  if (Math.abs(a) < MIN_NORMAL || Math.abs(b) < MIN_NORMAL) return false;
  return Math.abs(a - b) <= relative * Math.max(Math.abs(a), Math.abs(b));
}
