/**
 * The dashboard's static files: everything in services/router/dashboard/ (plain HTML, CSS and
 * ES modules, no build step) and uPlot's ES module and stylesheet from node_modules, read once at
 * start and served from memory with a Content-Security-Policy that allows this origin alone.
 * They hold no data: every figure comes from /api/dashboard/ with the user's key.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join, resolve } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';

const DASHBOARD_DIR = resolve(import.meta.dirname, '../dashboard');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
};

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Asset {
  type: string;
  body: Buffer;
}

/** The files served, by URL path. */
function assets(): Map<string, Asset> {
  const files = new Map<string, Asset>();
  for (const name of readdirSync(DASHBOARD_DIR)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) files.set(`/dashboard/${name}`, { type, body: readFileSync(join(DASHBOARD_DIR, name)) });
  }
  const require = createRequire(import.meta.url);
  files.set('/dashboard/vendor/uPlot.esm.js', { type: CONTENT_TYPES['.js'], body: readFileSync(require.resolve('uplot/dist/uPlot.esm.js')) });
  files.set('/dashboard/vendor/uPlot.min.css', { type: CONTENT_TYPES['.css'], body: readFileSync(require.resolve('uplot/dist/uPlot.min.css')) });
  return files;
}

export function registerDashboardAssets(app: FastifyInstance): void {
  const files = assets();
  const index = files.get('/dashboard/index.html');
  if (!index) throw new Error(`the dashboard's index.html is missing from ${DASHBOARD_DIR}`);
  const serve = (asset: Asset) => async (_request: unknown, reply: FastifyReply) =>
    reply.type(asset.type).headers({ 'content-security-policy': CSP, 'cache-control': 'no-cache', 'referrer-policy': 'no-referrer' }).send(asset.body);
  app.get('/', serve(index));
  for (const [path, asset] of files) app.get(path, serve(asset));
}
