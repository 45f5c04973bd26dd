/**
 * Structured answer values and their equivalence, cheapest test first: numbers (exact rationals,
 * then relative tolerance where a side is a decimal), symbolic expressions (exact when both sides are
 * exact constants, else pointwise evaluation), intervals, tuples, sets, matrices, equations and
 * inequalities. Text is handled by the caller.
 */
import { Budget } from "./budget.ts";
import {
  close,
  comparePointwise,
  diffExpr,
  type Expr,
  exactValue,
  numberExpr,
  parseExpr,
  realValue,
} from "./expr.ts";
import { balanced, splitTopLevel } from "./latex.ts";
import type { Normalized } from "./normalize.ts";
import { Rational } from "./rational.ts";

type NumberValue = {
  kind: "number";
  exact: Rational | null;
  approx: number;
  decimals: number | null;
  sig: number;
  /** Written with a percent sign (only a whole answer: `30\%`): it may also be given as 0.3, and 0.3 as 30%. */
  percent?: boolean;
};

export type Value =
  | NumberValue
  | { kind: "expr"; expr: Expr }
  | { kind: "list"; open: string; close: string; items: Value[] }
  | { kind: "matrix"; rows: Value[][]; determinant: boolean }
  | {
      kind: "relation";
      op: "=" | "<" | "<=" | "!=";
      lhs: Expr;
      rhs: Expr;
      text: string;
      /** The value a name is given (`x = 5`, `f(x) = 2x`, `x = 2+3 = 5`): it also compares with a bare `5`. */
      assigned: string | null;
      /** `assigned` parsed, on first use (a side is parsed once per verdict). */
      assignedParsed?: Value;
      /** Every side of a chain of equalities, first to last (only for chains). */
      chain?: Expr[];
    }
  /** `name = value` where the name is not an expression (`(p,q) = (3,2)`, `|AB| = 1`, `S_1:S = 7:32`). */
  | { kind: "named"; name: string; value: Value }
  | { kind: "union"; parts: Value[] }
  | { kind: "text"; text: string };

export type MatchReason =
  | "match_numeric"
  | "match_symbolic"
  | "match_interval"
  | "match_tuple"
  | "match_set"
  | "match_matrix"
  | "match_equation"
  | "match_inequality"
  | "match_text";

export interface CompareOptions {
  relativeTolerance: number;
  budget: Budget;
  /** Set when a comparison was refused because a value left the float range. */
  refusal?: { refused: boolean };
}

const SYMBOLIC_TOLERANCE = 1e-9;
/** A decimal written inside an expression (`0.5 - 0.866i`) makes that side an approximation. */
const DECIMAL_LITERAL = /\d*\.\d+/;
const MIN_NORMAL = 2.2250738585072014e-308;

function numberValue(exact: Rational | null, approx: number, literal?: string): NumberValue {
  let decimals: number | null = null;
  let sig = 17;
  if (literal && /^-?\d*\.\d+$/.test(literal)) {
    decimals = literal.split(".")[1]!.length;
    sig = literal.replace(/^-?0*\.?0*/, "").replace(".", "").length;
  }
  return { kind: "number", exact, approx, decimals, sig };
}

/** Exact parse of plain numbers, fractions, mixed numbers, scientific notation and integer powers. */
function parseNumber(s: string): NumberValue | null {
  // Mixed numbers: 1\frac{1}{2} and "1 1/2" are 1.5 (a whole number directly before the fraction).
  let m =
    /^(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$/.exec(s.trim()) ?? /^(-?)(\d+)\s+(\d+)\/(\d+)$/.exec(s.trim());
  if (m && !/^0+$/.test(m[4]!)) {
    let r = new Rational(BigInt(m[2]!)).add(new Rational(BigInt(m[3]!), BigInt(m[4]!)));
    if (m[1]) r = r.neg();
    return numberValue(r, r.toNumber());
  }
  const t = s.replace(/\s+/g, "");
  const dec = Rational.parseDecimal(t);
  if (dec) return numberValue(dec, dec.toNumber(), t);
  m = /^(-?)(\d+)\/(\d+)$/.exec(t);
  if (m && m[3] !== "0" && !/^0+$/.test(m[3]!)) {
    const r = new Rational(BigInt(m[2]!) * (m[1] ? -1n : 1n), BigInt(m[3]!));
    return numberValue(r, r.toNumber());
  }
  m = /^(-?)\\frac\{(\d+)\}\{(\d+)\}$/.exec(t);
  if (m && !/^0+$/.test(m[3]!)) {
    const r = new Rational(BigInt(m[2]!) * (m[1] ? -1n : 1n), BigInt(m[3]!));
    return numberValue(r, r.toNumber());
  }
  // a \times 10^{n}, a \cdot 10^n, 10^{n}, b^{n} with integers.
  m = /^(?:(-?\d+(?:\.\d+)?)(?:\\times|\\cdot|\*|x))?(-?\d+)\^\{?(-?\d+)\}?$/.exec(t);
  if (m) {
    const base = Rational.parseDecimal(m[2]!);
    const coeff = m[1] ? Rational.parseDecimal(m[1]) : new Rational(1n);
    const exp = BigInt(m[3]!);
    if (base && coeff) {
      const power = base.pow(exp);
      if (power) {
        const r = coeff.mul(power);
        return numberValue(r, r.toNumber());
      }
      const approx = coeff.toNumber() * base.toNumber() ** Number(exp);
      return numberValue(null, approx);
    }
  }
  return null;
}

const RELATION = /\\le(?![A-Za-z])|\\ge(?![A-Za-z])|\\ne(?![A-Za-z])|<=|>=|!=|=|<|>/g;
/** A name given a value: `x`, `x_1`, `f(x)`. */
const NAME = /^\s*(?:[A-Za-z](?:_\{?\w+\}?)?|[A-Za-z]\s*\(\s*[A-Za-z]\s*\))\s*$/;
/**
 * A quantity's name that is not an expression to solve: letters (with subscripts), `|AB|`, a tuple of
 * names `(p,q)`, a ratio of names `S_1:S`, `\angle ABC`. No digits outside subscripts, no arithmetic.
 */
const QUANTITY_NAME =
  /^\s*(?:\\(?:angle|triangle|overline|widehat|overarc)\s*)?[(|[]?\s*[A-Za-z](?:_\{?\w+\}?)?(?:\s*[A-Za-z](?:_\{?\w+\}?)?)*(?:\s*[,:]\s*(?:\\angle\s*)?[A-Za-z](?:_\{?\w+\}?)?(?:\s*[A-Za-z](?:_\{?\w+\}?)?)*)*\s*[)|\]]?\s*$/;

/** A ratio of quantity names (`\frac{NO}{BO}`): letters with subscripts only, no digits, no arithmetic. */
const RATIO_NAME = /^\s*\\frac\{\s*[A-Za-z]+(?:_\{?\w+\}?)?\s*\}\{\s*[A-Za-z]+(?:_\{?\w+\}?)?\s*\}\s*$/;

function isQuantityName(side: string): boolean {
  return (QUANTITY_NAME.test(side) || RATIO_NAME.test(side)) && !NAME.test(side);
}

/** `|z|` (the absolute value of one variable): the variable, else null. */
function absoluteOf(side: string): string | null {
  const m = /^\s*\|\s*([A-Za-z](?:_\{?\w+\}?)?)\s*\|\s*$/.exec(side);
  return m ? m[1]! : null;
}

const ABSOLUTE_BOUND_STEPS = 10_000;
const isLower = (o: string) => o === "<" || o === "\\le" || o === "<=";
const isUpper = (o: string) => o === ">" || o === "\\ge" || o === ">=";

function interval(lo: Value, hi: Value, open: string, close: string): Value {
  return { kind: "list", open, close, items: [lo, hi] };
}

function negated(text: string): Value | null {
  const e = parseExpr(`-(${text})`);
  return e ? { kind: "expr", expr: e } : null;
}

/**
 * An inequality on an absolute value, as the set of reals it defines: `1 \le |z| \le \frac32` is
 * `[-\frac32, -1] \cup [1, \frac32]`, `|x| < 2` is `(-2, 2)`, `|x| > 2` is `(-\infty,-2) \cup (2,\infty)`.
 * Null when a bound is not a constant or the set is not of these shapes.
 */
function absoluteInequality(parts: string[], ops: string[]): Value | null {
  // Bounds are short constants: a small budget of their own (parsing has no item budget).
  const budget = new Budget(ABSOLUTE_BOUND_STEPS);
  const inf = (sign: 1 | -1): Value => numberValue(null, sign * Number.POSITIVE_INFINITY);
  const constant = (t: string): { value: Value; real: number } | null => {
    const e = parseExpr(t.trim());
    if (!e || e.vars.length > 0) return null;
    const real = realValue(e, budget);
    return Number.isFinite(real) ? { value: { kind: "expr", expr: e }, real } : null;
  };
  const bracket = (o: string, side: "open" | "close") =>
    o === "<" || o === ">" ? (side === "open" ? "(" : ")") : side === "open" ? "[" : "]";
  if (ops.length === 1) {
    // |x| < c, |x| > c, or the same written the other way round.
    let [side, bound, op] = [parts[0]!, parts[1]!, ops[0]!];
    if (!absoluteOf(side))
      [side, bound, op] = [
        parts[1]!,
        parts[0]!,
        isLower(op)
          ? op.replace("<", ">").replace("\\le", "\\ge")
          : op.replace(">", "<").replace("\\ge", "\\le"),
      ];
    if (!absoluteOf(side)) return null;
    const c = constant(bound);
    const minus = negated(bound);
    if (!c || !minus || c.real <= 0) return null;
    if (isLower(op)) return interval(minus, c.value, bracket(op, "open"), bracket(op, "close"));
    if (isUpper(op)) {
      const inner = op === ">" ? ")" : "]";
      return {
        kind: "union",
        parts: [
          interval(inf(-1), minus, "(", inner),
          interval(c.value, inf(1), inner === ")" ? "(" : "[", ")"),
        ],
      };
    }
    return null;
  }
  const [o1, o2] = ops as [string, string];
  if (!isLower(o1) || !isLower(o2) || !absoluteOf(parts[1]!)) return null;
  const lo = constant(parts[0]!);
  const hi = constant(parts[2]!);
  const minusHi = negated(parts[2]!);
  const minusLo = negated(parts[0]!);
  if (!lo || !hi || !minusHi || !minusLo || hi.real <= Math.max(lo.real, 0)) return null;
  const outerOpen = bracket(o2, "open");
  const outerClose = bracket(o2, "close");
  if (lo.real < 0 || (lo.real === 0 && o1 !== "<")) return interval(minusHi, hi.value, outerOpen, outerClose);
  // lo >= 0 excluded, or lo > 0: two intervals, the inner ends from the first relation.
  const innerClose = o1 === "<" ? ")" : "]";
  const innerOpen = o1 === "<" ? "(" : "[";
  return {
    kind: "union",
    parts: [
      interval(minusHi, minusLo, outerOpen, innerClose),
      interval(lo.value, hi.value, innerOpen, outerClose),
    ],
  };
}

function parseRelation(s: string, depth: number): Value | null {
  const parts: string[] = [];
  const ops: string[] = [];
  let last = 0;
  for (const m of s.matchAll(RELATION)) {
    parts.push(s.slice(last, m.index));
    ops.push(m[0]);
    last = m.index + m[0].length;
  }
  parts.push(s.slice(last));
  if (ops.length === 0) return null;
  if (ops.length <= 2 && ops.every((o) => o !== "=") && parts.some((p) => absoluteOf(p))) {
    const set = absoluteInequality(parts, ops);
    if (set) return set;
  }
  if (ops.length === 1 && ops[0] === "=" && isQuantityName(parts[0]!)) {
    const value = parseValue(parts[1]!.trim(), depth + 1);
    return { kind: "named", name: parts[0]!.replace(/\s+/g, ""), value };
  }
  const exprs = parts.map((p) => parseExpr(p.trim()));
  if (exprs.some((e) => e === null)) return null;
  if (ops.length >= 2 && ops.every((o) => o === "=")) {
    // x = 5+5+1 = 11: a chain answers with its last side, when every constant side equals it (checked
    // when compared).
    const chain = exprs as Expr[];
    const assigned = NAME.test(parts[0]!) || chain[0]!.vars.length === 0 ? parts.at(-1)!.trim() : null;
    return { kind: "relation", op: "=", lhs: chain[0]!, rhs: chain.at(-1)!, text: s, assigned, chain };
  }
  if (ops.length === 2) {
    // a < x < b  ->  the interval (a, b)
    const [o1, o2] = ops as [string, string];
    const lower = (o: string) => o === "<" || o === "\\le" || o === "<=";
    if (lower(o1) && lower(o2)) {
      const lo = exprs[0]!;
      const hi = exprs[2]!;
      return {
        kind: "list",
        open: o1 === "<" ? "(" : "[",
        close: o2 === "<" ? ")" : "]",
        items: [
          { kind: "expr", expr: lo },
          { kind: "expr", expr: hi },
        ],
      };
    }
    return null;
  }
  if (ops.length !== 1) return null;
  const op = ops[0]!;
  let [lhs, rhs] = [exprs[0]!, exprs[1]!];
  let rel: "=" | "<" | "<=" | "!=";
  if (op === "=") rel = "=";
  else if (op === "\\ne" || op === "!=") rel = "!=";
  else if (op === "<") rel = "<";
  else if (op === "\\le" || op === "<=") rel = "<=";
  else {
    [lhs, rhs] = [rhs, lhs];
    rel = op === ">" ? "<" : "<=";
  }
  // `x = 5` (or `f(x) = 2x`, `|AB| = 1`) gives a value to a name: it also compares with a bare `5`.
  const named =
    NAME.test(parts[0]!) ||
    ((QUANTITY_NAME.test(parts[0]!) || RATIO_NAME.test(parts[0]!)) && exprs[1]!.vars.length === 0);
  const assigned = rel === "=" && named ? parts[1]!.trim() : null;
  return { kind: "relation", op: rel, lhs, rhs, text: s, assigned };
}

/** The outer bracket pair spans the whole string ("(1,2)" yes, "(1)+(2)" no). */
function wrapped(s: string): boolean {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") {
      depth--;
      if (depth === 0 && i < s.length - 1) return false;
    }
  }
  return depth === 0;
}

const MATRIX =
  /^[([]?\s*\\begin\{(matrix|pmatrix|bmatrix|Bmatrix|vmatrix|Vmatrix|smallmatrix|array)\}(?:\{[^{}]*\})?([\s\S]*)\\end\{\1\}\s*[)\]]?$/;

/** `\begin{pmatrix}1&2\\3&4\end{pmatrix}` (any bracket style, or an array in brackets) as rows of values. */
function parseMatrix(s: string, depth: number): Value | null {
  const m = MATRIX.exec(s);
  if (!m) return null;
  const env = m[1]!;
  // An array is a matrix only inside brackets; the matrix environments carry their own.
  if (env === "array" && !(/^[([]/.test(s) && /[)\]]$/.test(s))) return null;
  const rows = m[2]!
    .split(/\\\\/)
    .map((r) => r.trim())
    .filter((r, i, all) => r !== "" || i < all.length - 1)
    .map((r) => r.split("&").map((c) => parseValue(c.trim(), depth + 1)));
  if (rows.length === 0 || rows.some((r) => r.length !== rows[0]!.length)) return null;
  return { kind: "matrix", rows, determinant: env === "vmatrix" || env === "Vmatrix" };
}

/** Splits a bare list on a top-level joiner: `,` then `;`, then the words "or" / "and". */
function bareItems(s: string): string[] {
  for (const sep of [",", ";"]) {
    const items = splitTopLevel(s, sep);
    if (items.length >= 2) return items;
  }
  const words = splitTopLevel(s, " or ").flatMap((p) => splitTopLevel(p, " and "));
  return words.length >= 2 ? words : [s];
}

/**
 * Solutions given as groups of assignments, `p=5,q=2;p=7,q=2`: one tuple per group, in the order the
 * names are given (the same names in every group), so the answer compares with `(5,2),(7,2)`.
 */
function assignmentGroups(s: string, depth: number): Value | null {
  const groups = splitTopLevel(s, ";");
  if (groups.length < 2) return null;
  let names: string[] | null = null;
  const tuples: Value[] = [];
  for (const g of groups) {
    const pairs = splitTopLevel(g, ",").map((a) => {
      const m = /^\s*([A-Za-z](?:_\{?\w+\}?)?)\s*=\s*([^=<>]+)$/.exec(a);
      return m ? { name: m[1]!.replace(/[{}\s]/g, ""), value: m[2]!.trim() } : null;
    });
    if (pairs.length < 2 || pairs.some((p) => p === null)) return null;
    const these = pairs.map((p) => p!.name);
    if (new Set(these).size !== these.length) return null;
    if (names && names.join(",") !== these.join(",")) return null;
    names = these;
    const items = pairs.map((p) => parseValue(p!.value, depth + 1));
    if (items.some((v) => v.kind === "text")) return null;
    tuples.push({ kind: "list", open: "(", close: ")", items });
  }
  return { kind: "list", open: "", close: "", items: tuples };
}

/** Parses a normalized answer into a structured value. Never throws. */
export function parseValue(norm: Normalized | string, depth = 0): Value {
  const value = parseText(typeof norm === "string" ? norm : norm.text, depth);
  if (typeof norm !== "string" && norm.percent && value.kind === "number") return { ...value, percent: true };
  return value;
}

function parseText(raw: string, depth: number): Value {
  let s = raw.trim();
  if (depth > 8 || s.length === 0) return { kind: "text", text: s };
  // x \in [-2, 7]: membership answers with the set.
  const member = /^[A-Za-z](?:_\{?\w+\}?)?\s*\\in(?![A-Za-z])\s*/.exec(s);
  if (member) s = s.slice(member[0].length);
  if (s.includes("\\begin{")) {
    const matrix = parseMatrix(s, depth);
    if (matrix) return matrix;
  }
  if (/\\cup(?![A-Za-z])/.test(s)) {
    const parts = s.split(/\\cup(?![A-Za-z])/).map((p) => parseValue(p, depth + 1));
    if (parts.every((p) => p.kind === "list")) return { kind: "union", parts };
  }
  if (s.startsWith("\\{") && s.endsWith("\\}")) {
    const inner = s.slice(2, -2);
    return {
      kind: "list",
      open: "{",
      close: "}",
      items: bareItems(inner).map((p) => parseValue(p, depth + 1)),
    };
  }
  if (s.startsWith("{") && s.endsWith("}") && balanced(s) && wrapped(s)) {
    // A TeX group `{1,2,3}` is only grouping: it reads as what it holds.
    return parseValue(s.slice(1, -1), depth + 1);
  }
  if (balanced(s) && /^[([]/.test(s) && /[)\]]$/.test(s) && wrapped(s)) {
    const inner = s.slice(1, -1);
    // Items are separated by commas, or by semicolons where a comma is a decimal comma: (0;-2;6).
    let items = splitTopLevel(inner);
    if (items.length < 2) items = splitTopLevel(inner, ";");
    if (items.length >= 2) {
      return {
        kind: "list",
        open: s[0]!,
        close: s.at(-1)!,
        items: items.map((p) => parseValue(p, depth + 1)),
      };
    }
  }
  if (s.includes(";") && s.includes("=")) {
    const groups = assignmentGroups(s, depth);
    if (groups) return groups;
  }
  if (balanced(s)) {
    // A bare list ("-3, 3", "(11,7) or (7,11)", "1; 2") is a list of values; prose with commas stays text.
    const alternatives = bareItems(s);
    if (alternatives.length >= 2 && alternatives.every((a) => a.trim() !== "")) {
      const values = alternatives.map((p) => parseValue(p, depth + 1));
      if (values.every((v) => v.kind !== "text")) return { kind: "list", open: "", close: "", items: values };
      return { kind: "text", text: s };
    }
    const pm = s.split(/\\(?:pm|mp)(?![A-Za-z])/);
    if (pm.length === 2 && pm[1]!.trim() !== "") {
      // a \pm b is the two values a + b and a - b; a bare \pm b is b and -b.
      const [a, b] = [pm[0]!.trim(), pm[1]!.trim()];
      const items =
        a === ""
          ? [parseValue(b, depth + 1), parseValue(`-(${b})`, depth + 1)]
          : [parseValue(`${a}+${b}`, depth + 1), parseValue(`${a}-(${b})`, depth + 1)];
      if (items.every((v) => v.kind !== "text")) return { kind: "list", open: "", close: "", items };
    }
  }
  const num = parseNumber(s);
  if (num) return num;
  if (/=|<|>|\\le|\\ge|\\ne/.test(s)) {
    const rel = parseRelation(s, depth);
    if (rel) return rel;
    return { kind: "text", text: s };
  }
  const expr = parseExpr(s);
  if (expr) return { kind: "expr", expr };
  return { kind: "text", text: s };
}

/** Whether a value is a single scalar (not a list): a hedge is a list given where one value is asked. */
export function isList(v: Value): boolean {
  return v.kind === "list" || v.kind === "union";
}

function asExpr(v: Value): Expr | null {
  if (v.kind === "expr") return v.expr;
  if (v.kind === "number") return numberExpr(v.approx, v.exact);
  return null;
}

/** A number whose float value stands for it: not an exact value that over- or underflowed to 0 or ±∞. */
function representable(v: NumberValue): boolean {
  if (!Number.isFinite(v.approx)) return v.exact === null;
  if (v.approx === 0) return v.exact === null || v.exact.num === 0n;
  return Math.abs(v.approx) >= MIN_NORMAL;
}

function numbersEqual(a: NumberValue, b: NumberValue, opts: CompareOptions): boolean {
  if (a.exact && b.exact) {
    if (a.exact.equals(b.exact)) return true;
    // Two exact values written without decimals are equal only when they are the same rational.
    if (a.decimals === null && b.decimals === null) return false;
    // An integer gold answer (of any size) is matched exactly, never within a tolerance.
    if (a.exact.isInteger() && a.decimals === null) return false;
  }
  if (!representable(a) || !representable(b)) {
    if (opts.refusal) opts.refusal.refused = true;
    return false;
  }
  if (close(a.approx, b.approx, opts.relativeTolerance)) return true;
  return roundsTo(a, b) || roundsTo(b, a);
}

/** 30% given as 0.3, or 0.3 as 30%: exactly when both are exact, else within the tolerance. */
function percentEqual(a: NumberValue, b: NumberValue, opts: CompareOptions): boolean {
  if (!a.percent && !b.percent) return false;
  const exactBoth = a.exact !== null && b.exact !== null && a.decimals === null && b.decimals === null;
  if (exactBoth)
    return [new Rational(100n), new Rational(1n, 100n)].some((k) => a.exact!.equals(b.exact!.mul(k)));
  return [100, 0.01].some((k) => close(a.approx, b.approx * k, opts.relativeTolerance));
}

/** A decimal with at least 3 significant digits that is the correct rounding of the other value. */
function roundsTo(rounded: NumberValue, exact: NumberValue): boolean {
  if (rounded.decimals === null || rounded.sig < 3 || exact.decimals !== null) return false;
  if (!representable(rounded) || !representable(exact) || exact.approx === 0) return false;
  const half = 0.5 * 10 ** -rounded.decimals;
  return Math.abs(rounded.approx - exact.approx) <= half * (1 + 1e-9);
}

/** Converts `x < 2` style relations over one variable into intervals, so they compare with `(-\infty, 2)`. */
function relationAsInterval(v: Value): Value | null {
  if (v.kind !== "relation" || v.op === "=" || v.op === "!=") return null;
  const lhsVar = v.lhs.vars.length === 1 && /^[A-Za-z]$/.test(v.lhs.text.trim()) ? v.lhs : null;
  const rhsVar = v.rhs.vars.length === 1 && /^[A-Za-z]$/.test(v.rhs.text.trim()) ? v.rhs : null;
  const inf = (sign: 1 | -1): Value => numberValue(null, sign * Number.POSITIVE_INFINITY);
  if (lhsVar && v.rhs.vars.length === 0) {
    return {
      kind: "list",
      open: "(",
      close: v.op === "<" ? ")" : "]",
      items: [inf(-1), { kind: "expr", expr: v.rhs }],
    };
  }
  if (rhsVar && v.lhs.vars.length === 0) {
    return {
      kind: "list",
      open: v.op === "<" ? "(" : "[",
      close: ")",
      items: [{ kind: "expr", expr: v.lhs }, inf(1)],
    };
  }
  return null;
}

/**
 * Ordered lists compare item by item. Unordered ones (sets, bare lists of answers) compare as sets: every
 * gold item is in the prediction and every predicted item is in the gold, so a repeated item counts once.
 */
function listsEqual(gold: Value[], pred: Value[], ordered: boolean, opts: CompareOptions): boolean {
  if (ordered)
    return gold.length === pred.length && gold.every((g, i) => compareValues(g, pred[i]!, opts) !== null);
  const matched = new Array<boolean>(pred.length).fill(false);
  for (const g of gold) {
    let found = false;
    pred.forEach((p, i) => {
      if (compareValues(g, p, opts) !== null) matched[i] = found = true;
    });
    if (!found) return false;
  }
  return matched.every(Boolean);
}

/** A chain `x = a = b = c` is consistent when every side without variables equals its last side. */
function consistentChain(v: Extract<Value, { kind: "relation" }>, opts: CompareOptions): boolean {
  if (!v.chain) return true;
  const lastSide = v.chain.at(-1)!;
  return v.chain
    .slice(0, -1)
    .filter((e) => e.vars.length === 0)
    .every((e) => comparePointwise(e, lastSide, SYMBOLIC_TOLERANCE, "equal", opts.budget).equal);
}

/** The value a relation or named value assigns, for comparing with a bare value; null when it assigns none. */
function assignedValue(v: Value, opts: CompareOptions): Value | null {
  if (v.kind === "named") return v.value;
  if (v.kind === "relation" && v.assigned !== null) {
    if (!consistentChain(v, opts)) return null;
    v.assignedParsed ??= parseValue(v.assigned);
    return v.assignedParsed;
  }
  return null;
}

/** One side gives a value to a name (`(p,q) = (3,2)`, `x = 5`) and the other does not: compare the values. */
function compareAssigned(gold: Value, pred: Value, opts: CompareOptions): MatchReason | null {
  const g = assignedValue(gold, opts) ?? gold;
  const p = assignedValue(pred, opts) ?? pred;
  return g.kind === "relation" || p.kind === "relation" ? null : compareValues(g, p, opts);
}

type Of<K extends Value["kind"]> = Extract<Value, { kind: K }>;

/**
 * Returns the match reason when gold and pred are equivalent, else null. Each side was parsed once
 * into a typed value; this picks the one comparison for their pair of kinds: a named value (or an
 * assignment) stands for its value, an inequality for its interval, a number for an expression.
 */
export function compareValues(gold: Value, pred: Value, opts: CompareOptions): MatchReason | null {
  opts.budget.spend(1);
  if (gold.kind === "named" || pred.kind === "named") return compareNamed(gold, pred, opts);
  if (gold.kind === pred.kind) return compareSameKind(gold, pred, opts);
  return compareAcrossKinds(gold, pred, opts);
}

function compareSameKind(gold: Value, pred: Value, opts: CompareOptions): MatchReason | null {
  switch (gold.kind) {
    case "text":
      return compareTexts(gold, pred as Of<"text">);
    case "number":
      return numbersEqual(gold, pred as NumberValue, opts) || percentEqual(gold, pred as NumberValue, opts)
        ? "match_numeric"
        : null;
    case "matrix":
      return compareMatrices(gold, pred as Of<"matrix">, opts);
    case "list":
      return compareLists(gold, pred as Of<"list">, opts);
    case "union":
      return listsEqual(gold.parts, (pred as Of<"union">).parts, false, opts) ? "match_interval" : null;
    case "relation":
      return compareRelations(gold, pred as Of<"relation">, opts);
    case "expr":
      return compareExpressions(gold, pred, opts);
    case "named":
      return compareNamed(gold, pred, opts);
  }
}

function compareAcrossKinds(gold: Value, pred: Value, opts: CompareOptions): MatchReason | null {
  const has = (k: Value["kind"]) => gold.kind === k || pred.kind === k;
  if (has("matrix") || (has("text") && !has("relation"))) return null;
  if (has("list")) {
    // An inequality stands for its interval: `x < 2` is `(-\infty, 2)`.
    const g = gold.kind === "list" ? gold : relationAsInterval(gold);
    const p = pred.kind === "list" ? pred : relationAsInterval(pred);
    return g?.kind === "list" && p?.kind === "list" ? compareLists(g, p, opts) : null;
  }
  if (has("union")) return null;
  if (has("relation")) return compareAssigned(gold, pred, opts);
  return compareExpressions(gold, pred, opts);
}

function compareNamed(gold: Value, pred: Value, opts: CompareOptions): MatchReason | null {
  if (gold.kind === "named" && pred.kind === "named") {
    return gold.name === pred.name ? compareValues(gold.value, pred.value, opts) : null;
  }
  return compareAssigned(gold, pred, opts);
}

function compareTexts(gold: Of<"text">, pred: Of<"text">): MatchReason | null {
  const same = (a: string, b: string) => a.replace(/\s+/g, "") === b.replace(/\s+/g, "");
  if (same(gold.text, pred.text)) return "match_text";
  // Products of indexed symbols commute (`F_k F_{n-k-1}` is `F_{n-k-1} F_k`) in what we cannot evaluate.
  return same(commuteIndexedProducts(gold.text), commuteIndexedProducts(pred.text)) ? "match_text" : null;
}

/** Entry by entry, each with the comparison of its own kinds; a determinant only matches a determinant. */
function compareMatrices(gold: Of<"matrix">, pred: Of<"matrix">, opts: CompareOptions): MatchReason | null {
  if (gold.determinant !== pred.determinant || gold.rows.length !== pred.rows.length) return null;
  const same = gold.rows.every((row, i) => listsEqual(row, pred.rows[i]!, true, opts));
  return same ? "match_matrix" : null;
}

/** Sets and bare lists as sets; tuples and intervals item by item with the same brackets. */
function compareLists(g: Of<"list">, p: Of<"list">, opts: CompareOptions): MatchReason | null {
  const unordered = (v: Of<"list">) => v.open === "{" || v.open === "";
  if (unordered(g) || unordered(p)) {
    if (!(unordered(g) && unordered(p))) return null;
    return listsEqual(g.items, p.items, false, opts) ? "match_set" : null;
  }
  if (g.open !== p.open || g.close !== p.close) return null;
  if (!listsEqual(g.items, p.items, true, opts)) return null;
  const infinite = g.items.some((v) => v.kind === "number" && !Number.isFinite(v.approx));
  const interval = g.items.length === 2 && (g.open !== "(" || g.close !== ")" || infinite);
  return interval ? "match_interval" : "match_tuple";
}

/** Equations up to a nonzero factor, inequalities up to a positive one; chains must be consistent. */
function compareRelations(
  gold: Of<"relation">,
  pred: Of<"relation">,
  opts: CompareOptions,
): MatchReason | null {
  if (gold.op !== pred.op) return null;
  if (!consistentChain(gold, opts) || !consistentChain(pred, opts)) return null;
  const dg = diffExpr(gold.lhs, gold.rhs);
  const dp = diffExpr(pred.lhs, pred.rhs);
  const mode = gold.op === "=" || gold.op === "!=" ? "proportional" : "positive-proportional";
  if (!comparePointwise(dg, dp, 1e-7, mode, opts.budget).equal) return null;
  return mode === "proportional" ? "match_equation" : "match_inequality";
}

/** Numbers and expressions: exact when both are exact constants, else pointwise; a decimal side within the tolerance. */
function compareExpressions(gold: Value, pred: Value, opts: CompareOptions): MatchReason | null {
  const ge = asExpr(gold);
  const pe = asExpr(pred);
  if (!ge || !pe) return null;
  const decimalSide =
    (gold.kind === "number" && gold.decimals !== null) ||
    (pred.kind === "number" && pred.decimals !== null) ||
    (gold.kind === "expr" && DECIMAL_LITERAL.test(gold.expr.text)) ||
    (pred.kind === "expr" && DECIMAL_LITERAL.test(pred.expr.text));
  // A decimal side is an approximation: compared within the tolerance, never exactly.
  const pointwise = decimalSide
    ? comparePointwise(ge, pe, opts.relativeTolerance, "equal", opts.budget, false)
    : comparePointwise(ge, pe, SYMBOLIC_TOLERANCE, "equal", opts.budget);
  if (pointwise.equal) return "match_symbolic";
  if (pointwise.refused && opts.refusal) opts.refusal.refused = true;
  if (ge.vars.length === 0 && pe.vars.length === 0 && decimalSide) {
    // A decimal that correctly rounds an exact value (1.414 for \sqrt{2}) is a numeric match.
    const gv = gold.kind === "number" ? gold : constantNumber(ge, opts);
    const pv = pred.kind === "number" ? pred : constantNumber(pe, opts);
    if (gv && pv && (roundsTo(pv, gv) || roundsTo(gv, pv))) return "match_numeric";
  }
  return null;
}

/** The value of a constant expression as a number (exact when it is), or null when it has no real value. */
function constantNumber(e: Expr, opts: CompareOptions): NumberValue | null {
  const exact = exactValue(e.node, opts.budget);
  if (exact) return numberValue(exact, exact.toNumber());
  const v = realValue(e, opts.budget);
  return Number.isFinite(v) ? numberValue(null, v) : null;
}

/** An indexed symbol: `F_k`, `F_{n-k-1}`, `a_{12}`. */
const INDEXED = String.raw`[A-Za-z](?:_\{[^{}]*\}|_[A-Za-z0-9])`;
/** Two or more indexed symbols multiplied by juxtaposition or `\cdot`, not part of a subscript. */
const INDEXED_PRODUCT = new RegExp(
  String.raw`(?<![A-Za-z_^\\])${INDEXED}(?:\s*(?:\\cdot\s*)?${INDEXED})+(?![A-Za-z_^])`,
  "g",
);

/** Sorts every product of indexed symbols into one order, so that the order of its factors does not count. */
export function commuteIndexedProducts(text: string): string {
  return text.replace(INDEXED_PRODUCT, (run) => {
    const factors = run.match(new RegExp(INDEXED, "g")) ?? [run];
    return factors
      .map((f) => f.replace(/\s+/g, ""))
      .sort()
      .join(" ");
  });
}
