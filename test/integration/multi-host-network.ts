/**
 * Hosts on one machine for the multi-host tests: each a Linux network namespace with its own
 * address on 10.77.0.0/24, wired by veth pairs to a bridge whose address (10.77.0.1) is this
 * process's side. Every namespace resolves names through 10.77.0.1 (its own /etc/resolv.conf:
 * `ip netns exec` mounts /etc/netns/<name>/resolv.conf over it), where the test serves DNS. No
 * route leaves the /24: nothing here reaches beyond the namespaces the test made. Needs root.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const SUBNET_PREFIX = '10.77.0';
export const HOST_ADDRESS = `${SUBNET_PREFIX}.1`;
/** Every name this module makes starts with it, and the pid of the process that made it. */
const PREFIX = 'nxmh';

const ip = (...args: string[]) => run('ip', args);

/** Why this machine cannot make namespaces, or undefined when it can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs as root)';
  const probe = `${PREFIX}probe${process.pid}`;
  try {
    await ip('netns', 'add', probe);
    await ip('netns', 'del', probe);
    return undefined;
  } catch (error) {
    return `ip netns add failed: ${(error as { stderr?: string }).stderr?.trim() ?? (error as Error).message}`;
  }
}

/** Removes what an earlier run that died left behind (its process gone). */
async function removeLeftovers(): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const { stdout } = await ip('netns', 'list');
  for (const name of stdout.split('\n').map((line) => line.split(' ')[0]).filter((name) => name.startsWith(PREFIX))) {
    const pid = Number(/^nxmh(\d+)-/.exec(name)?.[1]);
    if (Number.isFinite(pid) && !alive(pid)) {
      await ip('netns', 'del', name).catch(() => {});
      await rm(`/etc/netns/${name}`, { recursive: true, force: true });
    }
  }
  const links = (await ip('-o', 'link', 'show')).stdout;
  for (const match of links.matchAll(/^\d+: (nxmh(\d+)br)[@:]/gm)) if (!alive(Number(match[2]))) await ip('link', 'del', match[1]).catch(() => {});
  for (const entry of await readdir('/etc/netns').catch(() => [] as string[])) {
    const pid = Number(/^nxmh(\d+)-/.exec(entry)?.[1]);
    if (Number.isFinite(pid) && !alive(pid)) await rm(`/etc/netns/${entry}`, { recursive: true, force: true });
  }
}

/** A process in a namespace, and what it has written to stderr (its log) so far. */
export interface HostProcess {
  process: ChildProcess;
  log(): string;
}

export interface Host {
  /** The namespace's name. */
  namespace: string;
  address: string;
}

export class TestNetwork {
  private readonly bridge = `${PREFIX}${process.pid}br`;
  private readonly hosts: Host[] = [];
  private readonly processes = new Set<ChildProcess>();
  private made = false;

  /** Makes the bridge with this process's address on it. */
  async create(): Promise<void> {
    await removeLeftovers();
    await ip('link', 'add', this.bridge, 'type', 'bridge');
    this.made = true;
    await ip('addr', 'add', `${HOST_ADDRESS}/24`, 'dev', this.bridge);
    await ip('link', 'set', this.bridge, 'up');
  }

  /** A new host: a namespace with `10.77.0.<last>` on a veth to the bridge, resolving through 10.77.0.1. */
  async addHost(role: string, last: number): Promise<Host> {
    const namespace = `${PREFIX}${process.pid}-${role}`;
    const outside = `${PREFIX}${process.pid % 1000}h${last}`;
    const inside = `${PREFIX}${process.pid % 1000}p${last}`;
    const host = { namespace, address: `${SUBNET_PREFIX}.${last}` };
    await ip('netns', 'add', namespace);
    this.hosts.push(host);
    await ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    await ip('link', 'set', inside, 'netns', namespace);
    await ip('link', 'set', outside, 'master', this.bridge);
    await ip('link', 'set', outside, 'up');
    await ip('-n', namespace, 'addr', 'add', `${host.address}/24`, 'dev', inside);
    await ip('-n', namespace, 'link', 'set', inside, 'up');
    await ip('-n', namespace, 'link', 'set', 'lo', 'up');
    await mkdir(`/etc/netns/${namespace}`, { recursive: true });
    await writeFile(`/etc/netns/${namespace}/resolv.conf`, `nameserver ${HOST_ADDRESS}\noptions timeout:1 attempts:2\n`);
    return host;
  }

  /**
   * Runs `node <args>` inside `host`'s namespace (`ip netns exec` becomes node, so signals reach
   * it); its stderr is kept (and so drained). Killed at cleanup if still running.
   */
  spawnNode(host: Host, args: string[], env: Record<string, string> = {}): HostProcess {
    const child = spawn('ip', ['netns', 'exec', host.namespace, process.execPath, ...args], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stderr!.on('data', (chunk) => (log += chunk));
    this.processes.add(child);
    child.once('exit', () => this.processes.delete(child));
    return { process: child, log: () => log };
  }

  /** Kills what still runs, deletes the namespaces (their veths go with them), the bridge and the resolv.conf files. */
  async cleanup(): Promise<void> {
    for (const child of this.processes) child.kill('SIGKILL');
    await Promise.all([...this.processes].map((child) => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(undefined);
      else child.once('exit', resolve);
    })));
    for (const host of this.hosts.splice(0)) {
      await ip('netns', 'del', host.namespace).catch(() => {});
      await rm(`/etc/netns/${host.namespace}`, { recursive: true, force: true });
    }
    if (this.made) await ip('link', 'del', this.bridge).catch(() => {});
    this.made = false;
  }
}

/** Resolves with the first JSON line of a service process's stdout that says it listens. */
export function listeningMessage(child: ChildProcess, what: string, timeoutMs = 60_000): Promise<{ address: string; healthAddress?: string }> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms: ${output}`)), timeoutMs);
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const line = output.split('\n').find((candidate) => candidate.includes('"event":"listening"'));
      if (!line) return;
      clearTimeout(timer);
      resolve(JSON.parse(line));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before listening`));
    });
  });
}
