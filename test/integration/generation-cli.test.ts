/**
 * The CLI's text generation against a router and a fake executor: `nexus generate` prints the
 * text as it arrives and a summary on stderr, `nexus chat` sends the conversation so far through
 * the checkpoint's chat template each turn, keeping the model's answers as assistant turns.
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../services/router/generation/text-tokenizer.ts';
import { CHATML_TEMPLATE, startGenerationCluster, type GenerationCluster } from '../router/generation/generation-cluster.ts';
import { byteLevelTokenizer } from '../router/generation/tokenizer-fixtures.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = ' hello world café 😀 STOP and more';
let cluster: GenerationCluster;
const templated = TextTokenizer.fromFiles({ tokenizerJson: byteLevelTokenizer().json, tokenizerConfigJson: JSON.stringify({ chat_template: CHATML_TEMPLATE }) });

beforeAll(async () => {
  const scriptIds = templated.encode(SCRIPT);
  cluster = await startGenerationCluster({ executor: { tokensFor: () => [...scriptIds, byteLevelTokenizer().eosId] } });
  await cluster.storeCheckpoint('tiny-gpt');
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

/** Runs the CLI with `input` on its stdin. */
function cliWithInput(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), ...args], {
      cwd: cluster.dataDir, env: { ...process.env, NEXUS_HOME: cluster.dataDir, NEXUS_ROUTER: cluster.router.address },
    }, (error, stdout, stderr) => done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin!.end(input);
  });
}

describe('nexus generate', () => {
  it('prints the text up to the stop string and a one-line summary on stderr', async () => {
    const result = await cluster.cli(['generate', 'tiny-gpt', 'Say hello', '--max-tokens', '40', '--temperature', '0', '--seed', '1', '--stop', 'STOP']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(' hello world café 😀 \n');
    expect(result.stderr).toMatch(/^\d+ tokens in \d+\.\d\d s \(prompt \d+\), first after \d+ ms, [\d.]+ tokens\/s after it \(stop at "STOP", version 1\)\n$/);
    expect(cluster.executor.starts().at(-1)).toMatchObject({ maxNewTokens: 40, sampling: { temperature: 0, seed: 1 } });
  });

  it('refuses a malformed flag before calling, and reports the router\'s refusal with its exit code', async () => {
    const usage = await cluster.cli(['generate', 'tiny-gpt', 'x', '--temperature', 'warm']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--temperature must be a number, got 'warm'/);
    const refused = await cluster.cli(['generate', 'tiny-gpt', 'x', '--top-p', '3']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/sampling\.top_p .*\(INVALID_ARGUMENT\)/);
  });
});

describe('nexus chat', () => {
  it('keeps the conversation: the second turn sends the first answer back as the assistant\'s message', async () => {
    const before = cluster.executor.starts().length;
    const result = await cliWithInput(['chat', 'tiny-gpt', '--system', 'Be brief.', '--max-tokens', '4'], 'Hi\nAnd then?\n');
    expect(result.code, result.stderr).toBe(0);
    const [first, second] = cluster.executor.starts().slice(before);
    const firstAnswer = templated.decode(templated.encode(SCRIPT).slice(0, 4));
    expect(result.stdout).toBe(`${firstAnswer}\n${firstAnswer}\n`);
    expect(first.promptTokenIds).toEqual(templated.encode(templated.renderChat([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]), false));
    expect(second.promptTokenIds).toEqual(templated.encode(templated.renderChat([
      { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: firstAnswer }, { role: 'user', content: 'And then?' },
    ]), false));
    expect(result.stderr.match(/tokens in/g)).toHaveLength(2);
  });

  it('forgets the history on /reset', async () => {
    const before = cluster.executor.starts().length;
    const result = await cliWithInput(['chat', 'tiny-gpt', '--max-tokens', '2'], 'Hi\n/reset\nHi\n');
    expect(result.code, result.stderr).toBe(0);
    const [first, second] = cluster.executor.starts().slice(before);
    expect(second.promptTokenIds).toEqual(first.promptTokenIds);
  });
});
