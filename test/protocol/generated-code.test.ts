import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { diffTrees, findStaleFiles } from '../../services/protocol/codegen.ts';

it('the committed generated code matches proto/ (run `npm run proto` if this fails)', () => {
  expect(findStaleFiles()).toEqual([]);
}, 60_000);

it('notices a changed, a missing and an extra generated file', () => {
  const root = mkdtempSync(join(tmpdir(), 'nexus-diff-'));
  try {
    const [fresh, committed] = [join(root, 'fresh'), join(root, 'committed')];
    for (const dir of [fresh, committed]) mkdirSync(join(dir, 'a'), { recursive: true });
    writeFileSync(join(fresh, 'a/same.ts'), 'x');
    writeFileSync(join(committed, 'a/same.ts'), 'x');
    writeFileSync(join(fresh, 'a/changed.ts'), 'new');
    writeFileSync(join(committed, 'a/changed.ts'), 'old');
    writeFileSync(join(fresh, 'a/missing.ts'), 'y');
    writeFileSync(join(committed, 'a/extra.ts'), 'z');
    expect(diffTrees(fresh, committed).sort()).toEqual(['a/changed.ts', 'a/extra.ts', 'a/missing.ts']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
