/** How the CLI shows where an alias sends traffic, in promote, rollback and history. */
import { describe, expect, it } from 'vitest';
import { formatDestination } from '../../services/cli/terminal/index.ts';

describe('formatDestination', () => {
  it('shows one version as its number, and a split as version=weight arms with its sticky parameter', () => {
    expect(formatDestination(3, [], '')).toBe('3');
    expect(formatDestination(3, [{ version: 3, weight: 90 }, { version: 4, weight: 10 }], '')).toBe('3=90,4=10');
    expect(formatDestination(3, [{ version: 3, weight: 90 }, { version: 4, weight: 10 }], 'user')).toBe('3=90,4=10 (sticky user)');
  });
});
