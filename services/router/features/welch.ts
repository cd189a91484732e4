/**
 * Running statistics and Welch's t-test, for comparing the arms of an A/B split. Pure.
 */

/** Mean and variance updated one value at a time (Welford's method: stable for long runs). */
export class RunningStats {
  count = 0;
  mean = 0;
  private sumOfSquares = 0;

  add(value: number): void {
    this.count += 1;
    const delta = value - this.mean;
    this.mean += delta / this.count;
    this.sumOfSquares += delta * (value - this.mean);
  }

  /** Sample variance (n − 1); 0 with fewer than two values. */
  get variance(): number {
    return this.count > 1 ? this.sumOfSquares / (this.count - 1) : 0;
  }
}

export interface WelchResult {
  t: number;
  degreesOfFreedom: number;
  /** Two-sided p-value: the chance of a difference this large if the means were equal. */
  pValue: number;
}

/** Natural log of the gamma function (Lanczos approximation, g = 7). */
function logGamma(x: number): number {
  const coefficients = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const shifted = x - 1;
  let sum = coefficients[0];
  for (let index = 1; index < coefficients.length; index++) sum += coefficients[index] / (shifted + index);
  const base = shifted + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(base) - base + Math.log(sum);
}

/** Continued fraction for the incomplete beta function (modified Lentz's method). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let result = d;
  for (let m = 1; m <= 300; m++) {
    const even = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 / (Math.abs(1 + even * d) < tiny ? tiny : 1 + even * d);
    c = Math.abs(1 + even / c) < tiny ? tiny : 1 + even / c;
    result *= d * c;
    const odd = (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 / (Math.abs(1 + odd * d) < tiny ? tiny : 1 + odd * d);
    c = Math.abs(1 + odd / c) < tiny ? tiny : 1 + odd / c;
    const step = d * c;
    result *= step;
    if (Math.abs(step - 1) < 1e-14) break;
  }
  return result;
}

/** The regularized incomplete beta function I_x(a, b). */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The continued fraction converges fast only on one side of the mean; use the symmetry otherwise.
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(a, b, x)) / a : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** Two-sided p-value of Student's t with `df` degrees of freedom. */
export function studentTTwoSidedP(t: number, df: number): number {
  return regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
}

/**
 * Welch's t-test for a difference in means between two samples with possibly unequal variances.
 * Undefined when either sample has fewer than two values or both have no variance.
 */
export function welchTTest(first: RunningStats, second: RunningStats): WelchResult | undefined {
  if (first.count < 2 || second.count < 2) return undefined;
  const firstTerm = first.variance / first.count;
  const secondTerm = second.variance / second.count;
  const standardError = Math.sqrt(firstTerm + secondTerm);
  if (standardError === 0) return undefined;
  const t = (first.mean - second.mean) / standardError;
  const degreesOfFreedom = (firstTerm + secondTerm) ** 2
    / (firstTerm ** 2 / (first.count - 1) + secondTerm ** 2 / (second.count - 1));
  return { t, degreesOfFreedom, pValue: studentTTwoSidedP(t, degreesOfFreedom) };
}
