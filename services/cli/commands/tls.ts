/**
 * nexus tls init: fills a TLS directory with the deployment's CA and a certificate for each
 * service, as `nexus up` does on its first start, for deployments that start the services some
 * other way (docker-compose.yml's one-shot `init` service, a Kubernetes job). Like `nexus up`, it
 * keeps what is valid and issues again only what is missing, expiring or lacking a name, so it
 * may run before every start.
 */
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { defaultDataDir } from '../../domain/index.ts';
import { ensureServiceMaterial } from '../../tls/index.ts';
import { ExitCode, printJson } from '../terminal/index.ts';

export interface TlsInitOptions {
  /** The TLS directory; default NEXUS_TLS_DIR, else $NEXUS_HOME/tls. */
  dir?: string;
  /** Comma-separated host names or IP addresses the services are dialed by, beyond localhost, 127.0.0.1 and ::1. */
  names?: string;
  json?: boolean;
}

/** A DNS host name: labels of letters, digits and inner hyphens, 253 characters at most. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** The extra names from `--names`, checked; throws naming the first that is neither a host name nor an IP address. */
function parseExtraNames(text: string | undefined): string[] {
  const names = (text ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '');
  for (const name of names) {
    if (!HOST_NAME.test(name) && isIP(name) === 0) {
      throw new Error(`--names: '${name}' is neither a host name (letters, digits, '-' and '.') nor an IP address`);
    }
  }
  return [...new Set(names)];
}

export async function initTls(options: TlsInitOptions): Promise<number> {
  let extraNames: string[];
  try {
    extraNames = parseExtraNames(options.names);
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const dir = resolve(options.dir ?? (process.env.NEXUS_TLS_DIR || join(defaultDataDir(), 'tls')));
  try {
    const report = await ensureServiceMaterial(dir, ['registry', 'executor', 'router'], extraNames);
    if (options.json) {
      printJson({ dir, created_authority: report.createdAuthority, issued: report.issued, extra_names: extraNames });
      return ExitCode.OK;
    }
    if (report.createdAuthority) console.log(`created a CA in ${dir}`);
    for (const { service, reason } of report.issued) console.log(`issued ${service}.crt (${reason})`);
    if (!report.createdAuthority && report.issued.length === 0) console.log(`${dir} holds a valid CA and service certificates; nothing to do`);
    return ExitCode.OK;
  } catch (error) {
    console.error(`nexus tls init: ${(error as Error).message}`);
    return ExitCode.FAILURE;
  }
}
