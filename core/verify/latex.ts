/**
 * Brace-aware LaTeX helpers: every scan is linear in the input, so thousands of open braces or a
 * 100k-token response cannot make the verifier hang.
 */

/** Index of the `}` closing the `{` at `open`, or -1 when it is never closed. Skips `\{` / `\}`. */
export function matchBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 92 /* \ */) {
      i += 1; // an escaped character never opens or closes a group
      continue;
    }
    if (c === 123 /* { */) depth += 1;
    else if (c === 125 /* } */) {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Reads a TeX argument at `pos`: a `{group}` or a single token. Returns [content, end] or null. */
export function readArgument(text: string, pos: number): [string, number] | null {
  let i = pos;
  while (i < text.length && text[i] === " ") i++;
  if (i >= text.length) return null;
  if (text[i] === "{") {
    const close = matchBrace(text, i);
    if (close < 0) return null;
    return [text.slice(i + 1, close), close + 1];
  }
  if (text[i] === "\\") {
    const m = /^\\[A-Za-z]+/.exec(text.slice(i, i + 40));
    if (m) return [m[0], i + m[0].length];
    return [text.slice(i, i + 2), i + 2];
  }
  return [text[i]!, i + 1];
}

export type BoxedMatch =
  | { kind: "ok"; content: string; start: number; end: number }
  | { kind: "unclosed"; start: number };

const BOX_COMMANDS = /\\(?:boxed|fbox)\s*\{/g;

/** The last `\boxed{...}` or `\fbox{...}` in the text, braces matched; null when there is none. */
export function lastBoxed(text: string): BoxedMatch | null {
  let last = -1;
  let braceAt = -1;
  for (const m of text.matchAll(BOX_COMMANDS)) {
    last = m.index;
    braceAt = m.index + m[0].length - 1;
  }
  if (last < 0) {
    const bare = /\\boxed ([^\s$]+)/g;
    let found: BoxedMatch | null = null;
    for (const m of text.matchAll(bare)) {
      found = { kind: "ok", content: m[1]!, start: m.index, end: m.index + m[0].length };
    }
    return found;
  }
  const close = matchBrace(text, braceAt);
  if (close < 0) return { kind: "unclosed", start: last };
  return { kind: "ok", content: text.slice(braceAt + 1, close), start: last, end: close + 1 };
}

/** Every top-level `\boxed{...}` / `\fbox{...}` in the text, in order (boxes inside a box are part of it). */
export function allBoxed(text: string): string[] {
  const out: string[] = [];
  let after = 0;
  for (const m of text.matchAll(BOX_COMMANDS)) {
    if (m.index < after) continue;
    const braceAt = m.index + m[0].length - 1;
    const close = matchBrace(text, braceAt);
    if (close < 0) break;
    out.push(text.slice(braceAt + 1, close).trim());
    after = close + 1;
  }
  return out;
}

/**
 * Replaces `\name{arg}` by `arg` for the given commands (e.g. `\text`, `\mathrm`), braces matched.
 * An unclosed group is left as it is.
 */
export function unwrapCommands(text: string, names: readonly string[]): string {
  if (!text.includes("\\")) return text;
  const re = new RegExp(`\\\\(?:${names.join("|")})\\s*\\{`, "g");
  let out = text;
  for (let guard = 0; guard < 64; guard++) {
    re.lastIndex = 0;
    const m = re.exec(out);
    if (!m) break;
    const braceAt = m.index + m[0].length - 1;
    const close = matchBrace(out, braceAt);
    if (close < 0) break;
    out = out.slice(0, m.index) + out.slice(braceAt + 1, close) + out.slice(close + 1);
  }
  return out;
}

/** Splits at top-level commas (outside (), [], {}), e.g. the items of a tuple or set. */
export function splitTopLevel(text: string, separator = ","): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\" && (text[i + 1] === "{" || text[i + 1] === "}")) {
      depth += text[i + 1] === "{" ? 1 : -1;
      i += 1;
      continue;
    }
    if (c === "(" || c === "[" || c === "{") depth += 1;
    else if (c === ")" || c === "]" || c === "}") depth -= 1;
    else if (depth === 0 && text.startsWith(separator, i)) {
      parts.push(text.slice(start, i));
      start = i + separator.length;
      i += separator.length - 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

/** True when brackets are balanced, so the text can be split and parsed safely. */
export function balanced(text: string): boolean {
  let depth = 0;
  for (const c of text) {
    if (c === "{" || c === "(" || c === "[") depth++;
    else if (c === "}" || c === ")" || c === "]") depth--;
    if (depth < 0) return false;
  }
  return depth === 0;
}
