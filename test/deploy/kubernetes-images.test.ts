/**
 * The images the manifests run, checked without a Docker engine (none is here): deploy/Dockerfile
 * and deploy/Dockerfile.nvidia read as Docker reads them (continuation lines joined, one
 * instruction each): stages, the Node 24 base, a non-root user that is the manifests' runAsUser,
 * every file copied existing and not kept out by .dockerignore, the entry points, lavapipe in one
 * image and not in the other, the NVIDIA driver capabilities Vulkan needs; and the NVIDIA entry
 * point script run with a stand-in node.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../integration/harness.ts';
import { containersOf, render, workloads } from './kubernetes-manifests.ts';

interface Instruction {
  keyword: string;
  args: string;
}

/** Docker's reading of a Dockerfile: comments and blank lines out, `\` continuations joined. */
function instructionsOf(path: string): Instruction[] {
  const lines = readFileSync(join(REPO_ROOT, path), 'utf8').split('\n');
  const instructions: Instruction[] = [];
  let pending = '';
  for (const line of lines) {
    if (/^\s*#/.test(line) || (pending === '' && line.trim() === '')) continue;
    pending += line.replace(/\\\s*$/, ' ');
    if (/\\\s*$/.test(line)) continue;
    const [, keyword, args] = /^\s*(\w+)\s+(.*)$/.exec(pending.trim())!;
    instructions.push({ keyword: keyword.toUpperCase(), args: args.trim() });
    pending = '';
  }
  return instructions;
}

/** The instructions of each stage, by stage name, in order; global ARGs before the first FROM under ''. */
function stagesOf(instructions: Instruction[]): Array<{ name: string; from: string; body: Instruction[] }> {
  const stages: Array<{ name: string; from: string; body: Instruction[] }> = [{ name: '', from: '', body: [] }];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args)!;
      stages.push({ name: name ?? '', from, body: [] });
    } else stages.at(-1)!.body.push(instruction);
  }
  return stages;
}

const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
/** Whether .dockerignore keeps `path` (or a folder above it) out of the build context. */
const isIgnored = (path: string) => ignored.some((pattern) => !pattern.includes('*') && (path === pattern || path.startsWith(`${pattern}/`)));

const IMAGES = ['deploy/Dockerfile', 'deploy/Dockerfile.nvidia'] as const;

describe.each(IMAGES)('%s', (dockerfile) => {
  const instructions = instructionsOf(dockerfile);
  const stages = stagesOf(instructions);
  const final = stages.at(-1)!;
  const body = (keyword: string) => final.body.filter((instruction) => instruction.keyword === keyword);

  it('builds in stages from Node 24 on Debian bookworm, the last copying only the production dependencies from the first', () => {
    expect(stages[0].body).toContainEqual({ keyword: 'ARG', args: 'NODE_VERSION=24' });
    expect(stages.slice(1).map((stage) => stage.name)).toEqual(['dependencies', 'runtime']);
    for (const stage of stages.slice(1)) expect(stage.from).toBe('node:${NODE_VERSION}-bookworm-slim');
    const install = stages[1].body.find((instruction) => instruction.keyword === 'RUN')!.args;
    expect(install).toMatch(/npm ci --omit=dev/);
    expect(body('COPY')).toContainEqual({ keyword: 'COPY', args: '--from=dependencies /opt/nexusml/node_modules ./node_modules' });
  });

  it('runs as the manifests\' non-root user, which owns the directories volumes are mounted on', async () => {
    const users = body('USER');
    expect(users).toHaveLength(1);
    // After every RUN: the installs run as root, the service as the user.
    expect(final.body.indexOf(users[0])).toBeGreaterThan(final.body.findLastIndex((instruction) => instruction.keyword === 'RUN'));
    const [uid, gid] = users[0].args.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    const runs = body('RUN').map((instruction) => instruction.args).join('\n');
    expect(runs).toContain(`--uid ${uid}`);
    expect(runs).toContain(`--gid ${gid}`);
    expect(runs).toMatch(/mkdir -p \/data \/tls \/credentials/);
    expect(runs).toMatch(/chown nexus:nexus \/data \/tls \/credentials/);
    for (const workload of workloads(await render('overlays/nvidia'))) {
      expect(workload.spec.template.spec.securityContext).toMatchObject({ runAsUser: uid, runAsGroup: gid });
    }
  });

  it('copies files that exist and that .dockerignore lets into the context, the services\' entry points among them', () => {
    const workdir = body('WORKDIR').at(-1)!.args;
    const copied: string[] = [];
    for (const { args } of body('COPY').filter((instruction) => !instruction.args.startsWith('--from='))) {
      const parts = args.split(/\s+/);
      const destination = parts.pop()!;
      for (const source of parts) {
        expect(existsSync(join(REPO_ROOT, source)), `${dockerfile}: COPY ${source}`).toBe(true);
        expect(isIgnored(source), `${dockerfile}: ${source} is in .dockerignore`).toBe(false);
        copied.push(destination.endsWith('/') ? posix.join(workdir, destination, posix.basename(source)) : posix.join(workdir, destination));
      }
    }
    for (const service of ['registry', 'router', 'executor', 'cli']) {
      expect(copied.some((path) => `/opt/nexusml/services/${service}/main.ts`.startsWith(`${path}/`)), service).toBe(true);
    }
    for (const needed of ['/opt/nexusml/proto', '/opt/nexusml/shaders', '/opt/nexusml/package.json']) expect(copied).toContain(needed);
  });

  it('has an exec-form entry point that runs node', () => {
    const [entrypoint] = body('ENTRYPOINT');
    const command = JSON.parse(entrypoint.args) as string[];
    if (command[0] === 'node') return expect(command).toEqual(['node']);
    // A script: copied into the image at that path, executable, ending in node with the arguments.
    const script = command[0].replace(/^\/opt\/nexusml\//, '');
    expect(body('COPY').some(({ args }) => args.split(/\s+/).includes(script))).toBe(true);
    accessSync(join(REPO_ROOT, script), constants.X_OK);
    expect(readFileSync(join(REPO_ROOT, script), 'utf8')).toMatch(/^#!\/bin\/sh\n[\s\S]*\nexec node "\$@"\n$/);
  });
});

describe('the two images\' Vulkan drivers', () => {
  const runs = (dockerfile: string) => stagesOf(instructionsOf(dockerfile)).at(-1)!.body.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.args).join('\n');
  const env = (dockerfile: string) => stagesOf(instructionsOf(dockerfile)).at(-1)!.body.filter((instruction) => instruction.keyword === 'ENV').map((instruction) => instruction.args).join(' ');

  it('the common image has Mesa\'s lavapipe from bookworm-backports (Mesa 24 or later)', () => {
    expect(runs('deploy/Dockerfile')).toMatch(/apt-get install -y --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1/);
  });

  it('the NVIDIA image has the Vulkan loader, no Mesa, and asks the toolkit for the graphics capability', () => {
    expect(runs('deploy/Dockerfile.nvidia')).toMatch(/apt-get install -y --no-install-recommends libvulkan1 libglvnd0/);
    expect(readFileSync(join(REPO_ROOT, 'deploy/Dockerfile.nvidia'), 'utf8')).not.toMatch(/mesa-vulkan-drivers/);
    expect(env('deploy/Dockerfile.nvidia')).toMatch(/NVIDIA_DRIVER_CAPABILITIES=compute,graphics,utility/);
    const icd = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy/nvidia/nvidia_icd.json'), 'utf8'));
    expect(icd).toEqual({ file_format_version: '1.0.0', ICD: { library_path: 'libGLX_nvidia.so.0', api_version: '1.3.0' } });
  });

  it('the NVIDIA entry point points the loader at the shipped manifest only when the toolkit mounted none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nexus-entrypoint-'));
    try {
      // A stand-in node that says what it was given.
      await writeFile(join(dir, 'node'), '#!/bin/sh\necho "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset} $*"\n');
      await chmod(join(dir, 'node'), 0o755);
      const run = async (extra: Record<string, string>) => (await promisify(execFile)('sh', [join(REPO_ROOT, 'deploy/nvidia/entrypoint.sh'), 'services/executor/main.ts', '--address=0.0.0.0:8021'], {
        env: { PATH: `${dir}:/usr/bin:/bin`, ...extra },
      })).stdout.trim();
      // Where this machine has the NVIDIA driver's own manifest, the script leaves the loader alone.
      const mounted = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d']
        .some((folder) => existsSync(folder) && readdirSync(folder).some((name) => /^nvidia_icd.*\.json$/.test(name)));
      expect(await run({})).toBe(`VK_DRIVER_FILES=${mounted ? 'unset' : '/opt/nexusml/deploy/nvidia/nvidia_icd.json'} services/executor/main.ts --address=0.0.0.0:8021`);
      expect(await run({ VK_DRIVER_FILES: '/custom/icd.json' })).toBe('VK_DRIVER_FILES=/custom/icd.json services/executor/main.ts --address=0.0.0.0:8021');
      await promisify(execFile)('sh', ['-n', join(REPO_ROOT, 'deploy/nvidia/entrypoint.sh')]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the manifests run the NVIDIA build for executors on GPUs and the common one everywhere else', async () => {
    for (const overlay of ['overlays/cpu', 'overlays/nvidia']) {
      for (const workload of workloads(await render(overlay))) {
        const gpu = overlay === 'overlays/nvidia' && workload.metadata.name === 'nexus-executor';
        expect(containersOf(workload)[0].image.endsWith('-nvidia'), `${overlay}: ${workload.metadata.name}`).toBe(gpu);
      }
    }
  });
});
