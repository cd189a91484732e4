/**
 * The text form of a traffic split, `3=90,4=10` (version=weight, the control first), as the CLI
 * takes it and every service shows it.
 */

/** One arm of a split: a version and its relative weight. */
export interface SplitArm {
  version: number;
  weight: number;
}

/** `3=90,4=10`. */
export function formatSplit(arms: readonly SplitArm[]): string {
  return arms.map((arm) => `${arm.version}=${arm.weight}`).join(',');
}

/** Parses a positive version number, or a non-negative one when `allowZero`. */
export function parseVersionNumber(text: string, what: string, allowZero = false): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || (!allowZero && value < 1)) throw new Error(`${what} '${text}' is not a version number (${allowZero ? '0, ' : ''}1, 2, ...)`);
  return value;
}

/**
 * Parses `3` (one version, no split) or `3=90,4=10` (a split by weight, the control first). The
 * registry checks the rest (distinct versions, that they exist, weight bounds).
 */
export function parseSplitTarget(text: string): { version: number; split: SplitArm[] } {
  if (!text.includes('=')) return { version: parseVersionNumber(text, 'version'), split: [] };
  const split = text.split(',').map((part) => {
    const match = /^\s*(\d+)\s*=\s*(\d+)\s*$/.exec(part);
    if (!match) throw new Error(`'${part}' in '${text}' is not version=weight (e.g. 3=90,4=10)`);
    return { version: parseVersionNumber(match[1], 'version'), weight: Number(match[2]) };
  });
  if (split.length < 2) throw new Error(`a split needs at least two arms, e.g. 3=90,4=10; for one version give just its number`);
  return { version: split[0].version, split };
}
