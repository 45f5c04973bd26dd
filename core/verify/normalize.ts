/**
 * Answer normalization: strips LaTeX noise, units, degrees, percent, currency and thousands
 * separators, so that `\$1{,}000.`, `1,000 dollars` and `1000` all become `1000`.
 * Pure string work, linear in the input.
 */
import { readArgument, unwrapCommands } from "./latex.ts";

export interface Normalized {
  /** The normalized answer, still LaTeX-ish math (e.g. `\frac{3}{4}`, `(-\infty,2]`). */
  text: string;
  percent: boolean;
  degrees: boolean;
}

const UNICODE: readonly [RegExp, string][] = [
  [/[\u2212\u2012\u2013\u2014\uFE63\uFF0D]/g, "-"],
  [/\u00D7/g, "\\times "],
  [/[\u00B7\u22C5]/g, "\\cdot "],
  [/\u00F7/g, "\\div "],
  [/\u03C0/g, "\\pi "],
  [/\u221E/g, "\\infty "],
  [/\u221A/g, "\\sqrt"],
  [/\u2264/g, "\\le "],
  [/\u2265/g, "\\ge "],
  [/\u2260/g, "\\ne "],
  [/\u00B2/g, "^2"],
  [/\u00B3/g, "^3"],
  [/\u222A/g, "\\cup "],
  [/\u2044/g, "/"],
];

const TEXT_COMMANDS = [
  "text",
  "textbf",
  "textit",
  "textrm",
  "textsf",
  "texttt",
  "mathrm",
  "mathbf",
  "mathit",
  "mathsf",
  "mathtt",
  "mathnormal",
  "mathup",
  "textnormal",
  "textup",
  "textsl",
  "textmd",
  "mbox",
  "hbox",
  "bm",
  "boldsymbol",
  "operatorname",
  "boxed",
  "fbox",
  "emph",
];

/** Spacing and sizing commands; a row break (two backslashes) is matched first so that it is kept whole. */
const SPACING =
  /\\\\|\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![A-Za-z])|\\[!,;:> ]|\\q?quad|\\(?:thinspace|medspace|thickspace|enspace|negthinspace)(?![A-Za-z])|~/g;

/** A thousands separator written with TeX spacing: `16,\!386.20`, `10\,000`, `1\;000\;000`, `10{,}000`. */
const SPACED_THOUSANDS = /(\d)(?:,\\!|\{,\}|\\[,;:!]|\\ )\s*(?=\d{3}(?!\d))/g;

const UNIT_WORDS = [
  "square units",
  "sq units",
  "units",
  "unit",
  "square centimeters",
  "square centimetres",
  "square meters",
  "square metres",
  "square feet",
  "square inches",
  "cubic centimeters",
  "cubic meters",
  "cubic units",
  "centimeters",
  "centimetres",
  "centimeter",
  "centimetre",
  "millimeters",
  "millimetres",
  "kilometers",
  "kilometres",
  "meters",
  "metres",
  "meter",
  "metre",
  "inches",
  "inch",
  "feet",
  "foot",
  "yards",
  "miles",
  "mile",
  "kilograms",
  "kilogram",
  "grams",
  "gram",
  "pounds",
  "pound",
  "ounces",
  "liters",
  "litres",
  "liter",
  "litre",
  "milliliters",
  "seconds",
  "second",
  "minutes",
  "minute",
  "hours",
  "hour",
  "days",
  "day",
  "weeks",
  "months",
  "years",
  "year",
  "dollars",
  "dollar",
  "cents",
  "cent",
  "euros",
  "people",
  "students",
  "cm",
  "mm",
  "km",
  "m",
  "in",
  "ft",
  "yd",
  "mi",
  "kg",
  "mg",
  "g",
  "lb",
  "lbs",
  "oz",
  "ml",
  "mL",
  "L",
  "l",
  "s",
  "sec",
  "min",
  "h",
  "hr",
  "hrs",
  "mph",
  "km/h",
  "m/s",
  "cm/s",
  "USD",
];

/** Words after a number that change its meaning, so the number is not read alone. */
const NOT_A_NOUN = new Set([
  "or",
  "and",
  "to",
  "more",
  "less",
  "than",
  "not",
  "only",
  "at",
  "least",
  "most",
  "times",
  "of",
  "percent",
  "plus",
  "minus",
  "x",
  "y",
  "z",
  "n",
  "i",
  "pi",
]);

const UNIT_SUFFIX = new RegExp(
  `^(.*?[\\d}).])\\s*(?:${UNIT_WORDS.map((w) => w.replace(/[/.]/g, "\\$&")).join("|")})(?:\\s*\\^\\s*\\{?[23]\\}?)?$`,
);

/** `\frac34` -> `\frac{3}{4}`, `\dfrac`/`\tfrac`/`\cfrac` -> `\frac`; arguments re-braced so later steps see groups. */
function canonicalFractions(text: string): string {
  let s = text.replace(/\\[dtc]frac(?![A-Za-z])/g, "\\frac");
  if (!s.includes("\\frac")) return s;
  let out = "";
  let i = 0;
  for (let guard = 0; guard < 512; guard++) {
    const at = s.indexOf("\\frac", i);
    if (at < 0) break;
    const a = readArgument(s, at + 5);
    const b = a && readArgument(s, a[1]);
    if (!a || !b) break;
    out += `${s.slice(i, at)}\\frac{${a[0]}}{${b[0]}}`;
    i = b[1];
  }
  s = out + s.slice(i);
  return s;
}

/** "<words> is|are|equals <value>": words without digits or negation, then a value that starts like one. */
const STATED_VALUE =
  /^(?:so |thus |therefore |hence )?(?!.*\b(?:not|no|never|neither|nor)\b)[A-Za-z][A-Za-z' ]{0,60}? (?:is|are|equals|was|will be|should be) (?:equal to |about |approximately )?((?:-|\\|\(|\[|\d|\.\d)[\s\S]*)$/i;

export function normalizeAnswer(raw: string): Normalized {
  let s = raw;
  for (const [re, to] of UNICODE) s = s.replace(re, to);
  s = s.normalize("NFKC");
  s = s.replace(/\\\(|\\\)|\\\[|\\\]|\\displaystyle|\\textstyle/g, " ");
  s = s.replace(/\\\$/g, "").replace(/\$/g, "");
  s = unwrapCommands(s, TEXT_COMMANDS);
  s = s.replace(SPACED_THOUSANDS, "$1");
  s = s.replace(SPACING, (m) => (m === "\\\\" ? m : " "));
  s = s.replace(/\{,\}/g, "");
  s = canonicalFractions(s);
  s = s.replace(/\\(?:leq|leqslant)(?![A-Za-z])/g, "\\le").replace(/\\(?:geq|geqslant)(?![A-Za-z])/g, "\\ge");
  s = s
    .replace(/\\neq(?![A-Za-z])/g, "\\ne")
    .replace(/\\lt(?![A-Za-z])/g, "<")
    .replace(/\\gt(?![A-Za-z])/g, ">");

  let degrees = false;
  s = s.replace(/\^\s*\{?\s*\\circ\s*\}?|\\circ(?![A-Za-z])|\u00B0|\\degree(?![A-Za-z])/g, () => {
    degrees = true;
    return "";
  });
  let percent = false;
  s = s.replace(/\\%|%|\s+percent\b/g, () => {
    percent = true;
    return "";
  });
  s = s.replace(/[\u20AC\u00A3\u00A5]|\bUSD\b|\bRs\.?/g, "");

  s = s.replace(/\s+/g, " ").trim();
  // "(11,7)or(7,11)": list words written without spaces between bracketed items.
  s = s.replace(/([)\]])\s*(or|and)\s*([([])/g, "$1 $2 $3");
  s = s.replace(/^["'`]+|["'`]+$/g, "").trim();
  s = s.replace(/\.+$/, "").trim();
  s = s.replace(/^(?:the )?(?:final )?answer(?: is)?\s*[:=]?\s*/i, "");
  // An approximate answer (`\approx 3.14`, `x \approx 3.14`) is read as its value (README: policy).
  s = s.replace(/^\\approx(?![A-Za-z])\s*/, "").replace(/\\approx(?![A-Za-z])/g, "=");
  // A sentence that states a value ("The area is 24 square units") answers with the value.
  const stated = STATED_VALUE.exec(s);
  if (stated) s = stated[1]!.trim();

  const withoutDegreeWord = s.replace(/\s*\b(?:degrees?|deg)$/i, "");
  if (withoutDegreeWord !== s && /\d/.test(withoutDegreeWord)) {
    s = withoutDegreeWord;
    degrees = true;
  }
  for (let guard = 0; guard < 3; guard++) {
    const m = UNIT_SUFFIX.exec(s);
    if (!m) break;
    s = m[1]!.trim();
  }
  // A count followed by a plain noun ("3 apples", "12 red balls") is the count.
  const counted = /^(-?\d+(?:[.,/]\d+)*)\s+([A-Za-z]+(?:\s+[A-Za-z]+)?)$/.exec(s);
  if (counted && !counted[2]!.split(/\s+/).some((w) => NOT_A_NOUN.has(w.toLowerCase()))) s = counted[1]!;
  if (/^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/,/g, "");
  s = s.replace(/\.+$/, "").trim();
  return { text: s, percent, degrees };
}

/** A lenient text form for free-form answers: lower case, no punctuation at the ends, no articles. */
export function textForm(s: string): string {
  return s
    .toLowerCase()
    .replace(/[\s\u00A0]+/g, " ")
    .replace(/^[\s.,;:!?'"]+|[\s.,;:!?'"]+$/g, "")
    .replace(/^(?:the|a|an) /, "")
    .trim();
}
