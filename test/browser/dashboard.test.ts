/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a router
 * with authentication on, a real executor and the Iris model stored twice from a git repository:
 * log in with an admin key, see the model with its commit, run an inference in the playground,
 * promote an alias and roll it back and see its history change, and watch a live chart move
 * under load. A second router with a fake text-generation executor serves the streamed
 * generation in the playground. Screenshots go to test-results/.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/index.ts';
import { TextTokenizer } from '../../services/router/generation/text-tokenizer.ts';
import { checkpointFiles } from '../router/generation/generation-cluster.ts';
import { startFakeExecutor, type FakeExecutor } from '../router/generation/fake-executor.ts';
import { byteLevelTokenizer } from '../router/generation/tokenizer-fixtures.ts';
import { REPO_ROOT, startHttpCluster, type HttpCluster } from '../router/http/http-cluster.ts';

const SHOTS = join(REPO_ROOT, 'test-results', 'browser');
/** Debian's chromium (deploy/bootstrap.sh installs it); Playwright's own browser downloads are not used. */
const CHROMIUM = '/usr/bin/chromium';

let cluster: HttpCluster;
let textCluster: HttpCluster;
let fake: FakeExecutor;
let browser: Browser;
let page: Page;
let adminKey: string;
let commit: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (deploy/bootstrap.sh's ensure_chromium, which .ci/run calls)`);
  await mkdir(SHOTS, { recursive: true });
  const launched = chromium.launch({
    executablePath: CHROMIUM,
    // Playwright gives each launch a fresh temporary profile (it refuses --user-data-dir here).
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  cluster = await startHttpCluster({ auth: true });
  const iris = trainIrisModel().onnx;
  await cluster.store('iris', iris, { message: 'train iris: first cut' });
  commit = await cluster.store('iris', iris, { message: 'train iris: more epochs', dirty: true });
  adminKey = await cluster.key('admin');
  const tokenizer = TextTokenizer.fromFiles({ tokenizerJson: byteLevelTokenizer().json });
  fake = await startFakeExecutor({ tokensFor: () => [...tokenizer.encode(' and they lived happily ever after'), byteLevelTokenizer().eosId], stepMs: 5 });
  textCluster = await startHttpCluster({ executor: false, executorAddresses: [fake.address] });
  await textCluster.storeDirectory('tiny-gpt', checkpointFiles());
  browser = await launched;
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
  await textCluster?.stop();
  await fake?.stop();
});

it('logs in with an API key and shows the model with its git commit', async () => {
  await page.goto(cluster.baseUrl);
  await page.getByLabel('API key').fill('nxk_000000000000_wrongwrongwrongwrongwrongwrongwrongwrongwro');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect.poll(() => page.locator('#login-error').textContent(), { timeout: 15_000 }).toContain('not accepted');
  await page.getByLabel('API key').fill(adminKey);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Show model iris' }).waitFor();
  expect(await page.locator('#principal').textContent()).toMatch(/^key:[0-9a-f]{12} \(admin\)$/);
  // The key lives in this tab's sessionStorage only.
  expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } }).sessionStorage.getItem('nexus.apiKey'))).toBe(adminKey);
  const newest = page.locator('#versions-table tr[data-version="2"]');
  await newest.waitFor();
  expect(await newest.locator('code').first().getAttribute('title')).toBe(commit);
  expect(await newest.textContent()).toContain(commit.slice(0, 10));
  expect(await newest.textContent()).toContain('main');
  expect(await newest.textContent()).toContain('dirty (1 changed)');
  expect(await newest.textContent()).toContain('train iris: more epochs');
  expect(await page.locator('#versions-table tr[data-version="1"]').textContent()).toContain('clean');
  await page.screenshot({ path: join(SHOTS, 'models.png') });
});

it('promotes an alias and rolls it back, and the history shows both', async () => {
  const form = page.locator('#promote-form');
  await form.getByLabel('Alias').fill('production');
  await form.getByLabel('Target').fill('1');
  await form.getByRole('button', { name: 'Promote' }).click();
  await page.locator('#aliases-table tr[data-alias="production"] .target').filter({ hasText: 'v1' }).waitFor();
  await page.locator('#promote-form').getByLabel('Target').fill('2');
  await page.locator('#promote-form').getByRole('button', { name: 'Promote' }).click();
  const row = page.locator('#aliases-table tr[data-alias="production"]');
  await row.locator('.target').filter({ hasText: 'v2' }).waitFor();
  await row.locator('.history li[data-revision="2"]').waitFor();
  expect(await row.locator('.history li').count()).toBe(2);
  await row.getByRole('button', { name: 'Roll back production' }).click();
  await page.locator('#aliases-table tr[data-alias="production"] .target').filter({ hasText: 'v1' }).waitFor();
  const rolledBack = page.locator('#aliases-table tr[data-alias="production"] .history li[data-revision="3"]');
  await rolledBack.waitFor();
  expect(await rolledBack.textContent()).toMatch(/v2 → v1\s*rollback/);
  await page.screenshot({ path: join(SHOTS, 'aliases.png'), fullPage: true });
});

it('runs an inference in the playground', async () => {
  await page.getByRole('tab', { name: 'Playground' }).click();
  await page.getByLabel('Model', { exact: true }).selectOption('iris');
  await page.getByRole('button', { name: 'Run inference' }).click();
  const output = page.locator('#pg-output');
  // A loaded 2-core machine may take seconds for the first answer; the poll's default is 1 s.
  await expect.poll(() => output.getAttribute('data-state'), { timeout: 30_000 }).toBe('done');
  const answer = JSON.parse((await output.textContent())!);
  expect(answer).toMatchObject({ model_name: 'iris', outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 3] }] });
  // Iris setosa, as the example's first flower is.
  expect(answer.outputs[0].data[0]).toBeGreaterThan(0.9);
});

it('watches a live chart move under load', async () => {
  await page.getByRole('tab', { name: 'Live traffic' }).click();
  let loading = true;
  const load = (async () => {
    const body = JSON.stringify({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP32', data: [6.7, 3.0, 5.2, 2.3] }] });
    while (loading) {
      await Promise.all(Array.from({ length: 8 }, () => fetch(`${cluster.baseUrl}/v2/models/iris/infer`, {
        method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body,
      }).then((response) => response.arrayBuffer())));
    }
  })();
  const card = page.locator('.traffic[data-model="iris"]');
  const chart = () => card.locator('[data-chart="throughput"] canvas').evaluate((canvas) => (canvas as unknown as { toDataURL(): string }).toDataURL());
  try {
    await expect.poll(async () => Number(await card.locator('.recent').getAttribute('data-value')), { timeout: 15_000 }).toBeGreaterThan(20);
    const before = await chart();
    await expect.poll(chart, { timeout: 10_000 }).not.toBe(before);
    const moved = await chart();
    await expect.poll(chart, { timeout: 10_000 }).not.toBe(moved);
    await page.screenshot({ path: join(SHOTS, 'traffic.png'), fullPage: true });
  } finally {
    loading = false;
    await load;
  }
});

it('streams a generation in the playground', async () => {
  await page.goto(`${textCluster.baseUrl}/#playground`);
  await page.getByLabel('Model', { exact: true }).selectOption('tiny-gpt');
  await page.getByLabel('Prompt').fill('Once upon a time');
  await page.getByRole('button', { name: 'Generate' }).click();
  const output = page.locator('#pg-output');
  // A loaded 2-core machine may take seconds for the first answer; the poll's default is 1 s.
  await expect.poll(() => output.getAttribute('data-state'), { timeout: 30_000 }).toBe('done');
  expect(await output.textContent()).toBe(' and they lived happily ever after');
  await page.screenshot({ path: join(SHOTS, 'playground.png') });
});
