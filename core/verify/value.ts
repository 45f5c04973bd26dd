/**
 * Structured answer values and their equivalence, cheapest test first: numbers (exact rationals,
 * then relative tolerance), symbolic expressions (pointwise evaluation), intervals, tuples, sets,
 * equations and inequalities. Text is handled by the caller.
 */
import { close, comparePointwise, type Expr, parseExpr } from "./expr.ts";
import { balanced, splitTopLevel } from "./latex.ts";
import type { Normalized } from "./normalize.ts";
import { Rational } from "./rational.ts";

export type Value =
  | { kind: "number"; exact: Rational | null; approx: number; decimals: number | null; sig: number }
  | { kind: "expr"; expr: Expr }
  | { kind: "list"; open: string; close: string; items: Value[] }
  | {
      kind: "relation";
      op: "=" | "<" | "<=" | "!=";
      lhs: Expr;
      rhs: Expr;
      text: string;
      assigned: string | null;
    }
  | { kind: "union"; parts: Value[] }
  | { kind: "text"; text: string };

export type MatchReason =
  | "match_numeric"
  | "match_symbolic"
  | "match_interval"
  | "match_tuple"
  | "match_set"
  | "match_equation"
  | "match_inequality";

export interface CompareOptions {
  relativeTolerance: number;
  deadline: number;
  now: () => number;
}

const SYMBOLIC_TOLERANCE = 1e-9;

function numberValue(exact: Rational | null, approx: number, literal?: string): Value {
  let decimals: number | null = null;
  let sig = 17;
  if (literal && /^-?\d*\.\d+$/.test(literal)) {
    decimals = literal.split(".")[1]!.length;
    sig = literal.replace(/^-?0*\.?0*/, "").replace(".", "").length;
  }
  return { kind: "number", exact, approx, decimals, sig };
}

/** Exact parse of plain numbers, fractions, mixed numbers, scientific notation and integer powers. */
function parseNumber(s: string): Value | null {
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

function parseRelation(s: string): Value | null {
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
  const exprs = parts.map((p) => parseExpr(p.trim()));
  if (exprs.some((e) => e === null)) return null;
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
  // `x = 5` (or `f(x) = 2x`) gives a value to a name: it also compares with a bare `5` (`2x`).
  const named = /^\s*(?:[A-Za-z](?:_\{?\w+\}?)?|[A-Za-z]\s*\(\s*[A-Za-z]\s*\))\s*$/;
  const assigned = rel === "=" && named.test(parts[0]!) ? parts[1]!.trim() : null;
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

/** Parses a normalized answer into a structured value. Never throws. */
export function parseValue(norm: Normalized | string, depth = 0): Value {
  const raw = typeof norm === "string" ? norm : norm.text;
  const s = raw.trim();
  if (depth > 8 || s.length === 0) return { kind: "text", text: s };
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
      items: splitTopLevel(inner).map((p) => parseValue(p, depth + 1)),
    };
  }
  if (balanced(s) && /^[([]/.test(s) && /[)\]]$/.test(s) && wrapped(s)) {
    const items = splitTopLevel(s.slice(1, -1));
    if (items.length >= 2) {
      return {
        kind: "list",
        open: s[0]!,
        close: s.at(-1)!,
        items: items.map((p) => parseValue(p, depth + 1)),
      };
    }
  }
  if (balanced(s)) {
    // A bare list ("-3, 3", "x = 1 or x = 2") is a list of values; prose with commas stays text.
    const items = splitTopLevel(s);
    const alternatives = items.length >= 2 ? items : s.split(/\s+(?:or|and)\s+/);
    if (alternatives.length >= 2 && alternatives.every((a) => a.trim() !== "")) {
      const values = alternatives.map((p) => parseValue(p, depth + 1));
      if (values.every((v) => v.kind !== "text")) return { kind: "list", open: "", close: "", items: values };
      return { kind: "text", text: s };
    }
    const pm = s.split(/\\(?:pm|mp)(?![A-Za-z])/);
    if (pm.length === 2 && pm[0]!.trim() !== "" && pm[1]!.trim() !== "") {
      // a \pm b is the two values a + b and a - b.
      const [a, b] = [pm[0]!.trim(), pm[1]!.trim()];
      const items = [parseValue(`${a}+${b}`, depth + 1), parseValue(`${a}-(${b})`, depth + 1)];
      if (items.every((v) => v.kind !== "text")) return { kind: "list", open: "", close: "", items };
    }
  }
  const num = parseNumber(s);
  if (num) return num;
  if (/=|<|>|\\le|\\ge|\\ne/.test(s)) {
    const rel = parseRelation(s);
    if (rel) return rel;
    return { kind: "text", text: s };
  }
  const expr = parseExpr(s);
  if (expr) {
    if (expr.vars.length === 0) {
      const v = expr.evaluate({});
      if (v !== null && !Number.isFinite(v)) return numberValue(null, v);
    }
    return { kind: "expr", expr };
  }
  return { kind: "text", text: s };
}

/** Whether a value is a single scalar (not a list): a hedge is a list given where one value is asked. */
export function isList(v: Value): boolean {
  return v.kind === "list" || v.kind === "union";
}

function asExpr(v: Value): Expr | null {
  if (v.kind === "expr") return v.expr;
  if (v.kind === "number") {
    const text = Number.isFinite(v.approx) ? String(v.approx) : v.approx > 0 ? "Infinity" : "-Infinity";
    return { text, vars: [], evaluate: () => v.approx };
  }
  return null;
}

function numbersEqual(
  a: Extract<Value, { kind: "number" }>,
  b: Extract<Value, { kind: "number" }>,
  tol: number,
): boolean {
  if (a.exact && b.exact) {
    if (a.exact.equals(b.exact)) return true;
    // An integer gold answer (of any size) is matched exactly, never within a tolerance.
    if (a.exact.isInteger() && a.decimals === null) return false;
  }
  if (close(a.approx, b.approx, tol)) return true;
  return roundsTo(a, b) || roundsTo(b, a);
}

/** A decimal with at least 3 significant digits that is the correct rounding of the other value. */
function roundsTo(
  rounded: Extract<Value, { kind: "number" }>,
  exact: Extract<Value, { kind: "number" }>,
): boolean {
  if (rounded.decimals === null || rounded.sig < 3 || exact.decimals !== null) return false;
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

function diffExpr(l: Expr, r: Expr): Expr {
  return {
    text: `(${l.text})-(${r.text})`,
    vars: [...new Set([...l.vars, ...r.vars])],
    evaluate: (scope) => {
      const a = l.evaluate(scope);
      const b = r.evaluate(scope);
      return a === null || b === null ? null : a - b;
    },
  };
}

function listsEqual(gold: Value[], pred: Value[], ordered: boolean, opts: CompareOptions): boolean {
  if (gold.length !== pred.length) return false;
  if (ordered) return gold.every((g, i) => compareValues(g, pred[i]!, opts) !== null);
  const used = new Array<boolean>(pred.length).fill(false);
  for (const g of gold) {
    const k = pred.findIndex((p, i) => !used[i] && compareValues(g, p, opts) !== null);
    if (k < 0) return false;
    used[k] = true;
  }
  return true;
}

/** Returns the match reason when gold and pred are equivalent, else null. */
export function compareValues(gold: Value, pred: Value, opts: CompareOptions): MatchReason | null {
  if (opts.now() > opts.deadline) return null;
  const tol = opts.relativeTolerance;
  if (gold.kind === "number" && pred.kind === "number") {
    return numbersEqual(gold, pred, tol) ? "match_numeric" : null;
  }
  if (gold.kind === "list" || pred.kind === "list") {
    const g = gold.kind === "list" ? gold : relationAsInterval(gold);
    const p = pred.kind === "list" ? pred : relationAsInterval(pred);
    if (!g || !p || g.kind !== "list" || p.kind !== "list") return null;
    const unordered = (v: Extract<Value, { kind: "list" }>) => v.open === "{" || v.open === "";
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
  if (gold.kind === "union" || pred.kind === "union") {
    if (gold.kind !== "union" || pred.kind !== "union") return null;
    return listsEqual(gold.parts, pred.parts, false, opts) ? "match_interval" : null;
  }
  if (gold.kind === "relation" || pred.kind === "relation") {
    if (gold.kind !== "relation" || pred.kind !== "relation") {
      const g = gold.kind === "relation" && gold.assigned !== null ? parseValue(gold.assigned) : gold;
      const p = pred.kind === "relation" && pred.assigned !== null ? parseValue(pred.assigned) : pred;
      return g.kind === "relation" || p.kind === "relation" ? null : compareValues(g, p, opts);
    }
    if (gold.op !== pred.op) {
      return null;
    }
    const dg = diffExpr(gold.lhs, gold.rhs);
    const dp = diffExpr(pred.lhs, pred.rhs);
    if (gold.op === "=" || gold.op === "!=") {
      return comparePointwise(dg, dp, 1e-7, "proportional").equal ? "match_equation" : null;
    }
    return comparePointwise(dg, dp, 1e-7, "positive-proportional").equal ? "match_inequality" : null;
  }
  const ge = asExpr(gold);
  const pe = asExpr(pred);
  if (ge && pe) {
    const decimalSide =
      (gold.kind === "number" && gold.decimals !== null) ||
      (pred.kind === "number" && pred.decimals !== null);
    if (comparePointwise(ge, pe, decimalSide ? tol : SYMBOLIC_TOLERANCE).equal) return "match_symbolic";
    if (ge.vars.length === 0 && pe.vars.length === 0) {
      // A decimal that correctly rounds an exact value (1.414 for \sqrt{2}) is a numeric match.
      const gv = gold.kind === "number" ? gold : numberValue(null, ge.evaluate({}) ?? Number.NaN);
      const pv = pred.kind === "number" ? pred : numberValue(null, pe.evaluate({}) ?? Number.NaN);
      if (gv.kind === "number" && pv.kind === "number" && (roundsTo(pv, gv) || roundsTo(gv, pv))) {
        return "match_numeric";
      }
    }
  }
  return null;
}
