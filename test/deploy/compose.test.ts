/**
 * docker-compose.yml sets NexusML up as `nexus up` does (docs/security.md): a one-shot `init`
 * service creates the TLS material in a volume that every service mounts read-only through
 * --tls-dir, the registry writes the bootstrap admin key to a volume of its own, only the
 * router's port is published, and every service may listen on 0.0.0.0 under the bind policy
 * because it has TLS and authentication. Docker is not needed: the file is read as compose reads
 * it (YAML with merge keys), and `init`'s own command is run here to check what it creates.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_IDENTITIES } from '../../services/auth/roles.ts';
import { decideBind } from '../../services/tls/bind-policy.ts';
import { loadServiceMaterial } from '../../services/tls/material.ts';
import { REPO_ROOT } from '../integration/harness.ts';

interface ComposeService {
  build?: { context: string; dockerfile: string };
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  profiles?: string[];
}

const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const dockerfile = readFileSync(join(REPO_ROOT, 'deploy/Dockerfile'), 'utf8');

/** The services built from our image (NexusML's own, as opposed to Jaeger, Prometheus, Grafana). */
const ours = Object.entries(compose.services).filter(([, service]) => service.build?.dockerfile === 'deploy/Dockerfile');
const serviceNamed = (name: string) => compose.services[name]!;
/** The value after `flag` in a command, or undefined. */
const flagValue = (command: string[] | undefined, flag: string) => {
  const at = command?.indexOf(flag) ?? -1;
  return at < 0 ? undefined : command![at + 1];
};
/** A volume mount `name:/target[:ro]` split up; bind mounts (./path) included. */
const mountsOf = (service: ComposeService) => (service.volumes ?? []).map((spec) => {
  const [source, target, mode] = spec.split(':');
  return { source, target, readOnly: mode === 'ro' };
});
/** The mount whose target holds `path`. */
const mountHolding = (service: ComposeService, path: string) =>
  mountsOf(service).find((mount) => path === mount.target || path.startsWith(`${mount.target}/`));

const LONG_RUNNING = ['registry', 'executor', 'router'] as const;

describe('docker-compose.yml', () => {
  it('has our services: the one-shot init, the three long-running ones, and the CLI', () => {
    expect(ours.map(([name]) => name).sort()).toEqual(['cli', 'executor', 'init', 'registry', 'router']);
  });

  it('runs files that exist in the repository and that the image copies', () => {
    const copied = [...dockerfile.matchAll(/^COPY (\S+) /gm)].map((match) => match[1]);
    for (const [name, service] of ours) {
      const scripts = [...(service.entrypoint ?? []), ...(service.command ?? [])].filter((arg) => arg.endsWith('.ts'));
      expect(scripts, name).toHaveLength(1);
      expect(existsSync(join(REPO_ROOT, scripts[0])), `${name}: ${scripts[0]}`).toBe(true);
      expect(copied, name).toContain(scripts[0].split('/')[0]);
    }
  });

  it('publishes only the router\'s gRPC port', () => {
    const published = ours.filter(([, service]) => (service.ports ?? []).length > 0);
    expect(published.map(([name, service]) => [name, service.ports])).toEqual([['router', ['8001:8001']]]);
    expect(flagValue(serviceNamed('router').command, '--address')).toBe('0.0.0.0:8001');
  });

  it('never turns authentication or TLS off', () => {
    for (const [name, service] of ours) {
      expect([...(service.entrypoint ?? []), ...(service.command ?? [])], name).not.toContain('--insecure');
      expect(service.environment?.NEXUS_INSECURE, name).toBeUndefined();
    }
  });

  it('gives every service the TLS directory init fills, read-only, and starts them after init succeeded', () => {
    const init = serviceNamed('init');
    const initDir = flagValue(init.command, '--dir')!;
    const initMount = mountHolding(init, initDir)!;
    expect(initMount).toMatchObject({ target: initDir, readOnly: false });
    expect(Object.keys(compose.volumes)).toContain(initMount.source);
    for (const name of LONG_RUNNING) {
      const service = serviceNamed(name);
      const tlsDir = flagValue(service.command, '--tls-dir');
      expect(tlsDir, name).toBeDefined();
      expect(mountHolding(service, tlsDir!), name).toEqual({ source: initMount.source, target: tlsDir, readOnly: true });
      expect((service.depends_on as Record<string, { condition: string }>).init, name).toEqual({ condition: 'service_completed_successfully' });
    }
    // The CLI finds the CA and the admin key under NEXUS_HOME (/data in the image), read-only.
    expect(dockerfile).toMatch(/NEXUS_HOME=\/data\b/);
    expect(mountHolding(serviceNamed('cli'), '/data/tls/ca.crt')).toEqual({ source: initMount.source, target: '/data/tls', readOnly: true });
  });

  it('has the registry write the bootstrap admin key to a volume of its own, which the CLI reads', () => {
    const registry = serviceNamed('registry');
    const keyFile = flagValue(registry.command, '--bootstrap-admin-key-file')!;
    const mount = mountHolding(registry, keyFile)!;
    expect(mount.readOnly).toBe(false);
    expect(Object.keys(compose.volumes)).toContain(mount.source);
    // Mounted nowhere else but the CLI, which reads it as $NEXUS_HOME/credentials/admin.key.
    const holders = ours.filter(([, service]) => mountsOf(service).some((other) => other.source === mount.source)).map(([name]) => name);
    expect(holders.sort()).toEqual(['cli', 'registry']);
    expect(mountHolding(serviceNamed('cli'), '/data/credentials/admin.key')).toEqual({ source: mount.source, target: '/data/credentials', readOnly: true });
    expect(keyFile.slice(mount.target.length)).toBe('/admin.key');
  });

  it('lets every service listen on 0.0.0.0 under the bind policy, as it has TLS and authentication', () => {
    const tlsOf = (name: string, command: string[]) => (name === 'router'
      ? flagValue(command, '--tls-cert') !== undefined && flagValue(command, '--tls-key') !== undefined
      : flagValue(command, '--tls-dir') !== undefined);
    for (const name of LONG_RUNNING) {
      const command = serviceNamed(name).command!;
      const address = flagValue(command, '--address')!;
      expect(address.startsWith('0.0.0.0:'), name).toBe(true);
      expect(decideBind({ service: name, address, tls: tlsOf(name, command), authentication: true, insecure: false }), name).toEqual({ allowed: true });
    }
    // And without TLS the same address would be refused: the check above can fail.
    expect(decideBind({ service: 'registry', address: '0.0.0.0:8011', tls: false, authentication: true, insecure: false }).allowed).toBe(false);
  });

  it('has the router serve its public port with a certificate and key that init creates', () => {
    const router = serviceNamed('router').command!;
    const tlsDir = flagValue(router, '--tls-dir')!;
    expect(flagValue(router, '--tls-cert')).toBe(`${tlsDir}/router.crt`);
    expect(flagValue(router, '--tls-key')).toBe(`${tlsDir}/router.key`);
  });
});

describe("init's command, run here", () => {
  let dir: string;
  let initOutput: string;
  const init = serviceNamed('init');
  const initDir = flagValue(init.command, '--dir')!;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nexus-compose-tls-'));
    const [script, ...args] = init.command!.map((arg) => (arg === initDir ? dir : arg));
    initOutput = (await promisify(execFile)(process.execPath, [join(REPO_ROOT, script), ...args], { cwd: REPO_ROOT })).stdout;
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates the CA and a certificate for each service, and keeps them on the next start', async () => {
    expect(initOutput).toContain('created a CA');
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'executor.crt', 'executor.key', 'registry.crt', 'registry.key', 'router.crt', 'router.key']);
    for (const service of SERVICE_IDENTITIES) await expect(loadServiceMaterial(dir, service)).resolves.toMatchObject({ service });
    const [script, ...args] = init.command!.map((arg) => (arg === initDir ? dir : arg));
    const again = await promisify(execFile)(process.execPath, [join(REPO_ROOT, script), ...args], { cwd: REPO_ROOT });
    expect(again.stdout).toContain('nothing to do');
  });

  it('names each service as the others dial it inside the network', () => {
    const dialed = new Map<string, string>();
    for (const name of LONG_RUNNING) {
      const command = serviceNamed(name).command!;
      command.forEach((arg, index) => {
        if (arg === '--registry' || arg === '--executor') dialed.set(arg.slice(2), command[index + 1].split(':')[0]);
      });
    }
    expect(Object.fromEntries(dialed)).toEqual({ registry: 'registry', executor: 'executor' });
    for (const [service, host] of dialed) {
      const names = new X509Certificate(readFileSync(join(dir, `${service}.crt`))).subjectAltName!.split(', ');
      expect(names).toContain(`DNS:${host}`);
      expect(names).toContain(`URI:spiffe://nexusml/${service}`);
    }
    // The router's certificate, which its public port serves, names localhost for clients on the host.
    expect(new X509Certificate(readFileSync(join(dir, 'router.crt'))).subjectAltName).toContain('DNS:localhost');
  });

  it('refuses a name that is neither a host name nor an IP address', async () => {
    const refused = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), 'tls', 'init', '--dir', dir, '--names', 'registry,bad name'])
      .then(() => undefined, (error: { code: number; stderr: string }) => error);
    expect(refused?.code).toBe(2);
    expect(refused?.stderr).toContain("--names: 'bad name' is neither a host name");
  });
});
