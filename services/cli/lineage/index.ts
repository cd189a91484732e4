/** Where a model came from: the git commit, branch and remote of the code that made it, and its pin file. */
export { findRepositoryRoot, META_FILE, readGitLineage, type LineageResult } from './git-lineage.ts';
