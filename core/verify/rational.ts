/** Exact rationals over BigInt, for integers of any size and decimals without rounding. */

/** Integer powers whose result would exceed this many decimal digits are not expanded exactly. */
export const MAX_EXACT_DIGITS = 20_000;

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

export class Rational {
  readonly num: bigint;
  readonly den: bigint;

  constructor(num: bigint, den = 1n) {
    if (den === 0n) throw new RangeError("zero denominator");
    const sign = den < 0n ? -1n : 1n;
    const g = gcd(num, den) || 1n;
    this.num = (sign * num) / g;
    this.den = (sign * den) / g;
  }

  static parseDecimal(text: string): Rational | null {
    const m = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/.exec(text);
    if (!m || (m[2] === "" && (m[3] ?? "") === "")) return null;
    const frac = m[3] ?? "";
    let num = BigInt(`${m[2] || "0"}${frac}`);
    let den = 10n ** BigInt(frac.length);
    const exp = Number(m[4] ?? 0);
    if (Math.abs(exp) > MAX_EXACT_DIGITS) return null;
    if (exp > 0) num *= 10n ** BigInt(exp);
    else if (exp < 0) den *= 10n ** BigInt(-exp);
    if (m[1] === "-") num = -num;
    return new Rational(num, den);
  }

  add(o: Rational): Rational {
    return new Rational(this.num * o.den + o.num * this.den, this.den * o.den);
  }

  mul(o: Rational): Rational {
    return new Rational(this.num * o.num, this.den * o.den);
  }

  div(o: Rational): Rational | null {
    return o.num === 0n ? null : new Rational(this.num * o.den, this.den * o.num);
  }

  neg(): Rational {
    return new Rational(-this.num, this.den);
  }

  /** this^k for an integer k, or null when the result would have more than `maxDigits` digits. */
  pow(k: bigint, maxDigits = MAX_EXACT_DIGITS): Rational | null {
    if (k === 0n) return new Rational(1n);
    let base: Rational = this;
    if (k < 0n) {
      if (this.num === 0n) return null;
      base = new Rational(this.den, this.num);
    }
    const e = k < 0n ? -k : k;
    const digits = Math.max(base.num.toString().length, base.den.toString().length);
    const unit = base.den === 1n && (base.num === 1n || base.num === -1n || base.num === 0n);
    if (!unit && digits * Number(e) > maxDigits) return null;
    if (unit) return new Rational(e % 2n === 0n && base.num !== 0n ? 1n : base.num);
    return new Rational(base.num ** e, base.den ** e);
  }

  equals(o: Rational): boolean {
    return this.num === o.num && this.den === o.den;
  }

  isInteger(): boolean {
    return this.den === 1n;
  }

  toNumber(): number {
    if (this.den === 1n) return Number(this.num);
    const n = Number(this.num);
    const d = Number(this.den);
    if (Number.isFinite(n) && Number.isFinite(d)) return n / d;
    // Scale both down to keep the ratio finite.
    const shift = BigInt(Math.max(this.num.toString().length, this.den.toString().length) - 300);
    const scale = 10n ** (shift > 0n ? shift : 0n);
    return Number(this.num / scale) / Number(this.den / scale);
  }
}
