/**
 * nexus keys create|list|revoke: API keys, which the registry keeps (admin). A created key is
 * printed this once; the registry stores only its hash. Limits are given as people say them
 * (`--rate 10/s`, `--quota 5000/day`) and sent as the key's KeyLimits.
 */
import {
  CreateKeyRequest, type CreateKeyResponse, type KeyInfo, type KeyLimits, type ListKeysResponse, type RevokeKeyResponse,
} from '../../protocol/generated/nexus/auth/v1/keys.ts';
import { keysClient, unaryCall } from '../remote/index.ts';
import { ExitCode, printJson, printTable, reportError } from '../terminal/index.ts';
import { formatTime } from './show.ts';

export interface CreateKeyOptions {
  registry: string;
  role: string;
  models?: string[];
  /** Calls per second, `N` or `N/s`. */
  rate?: string;
  /** Rows per second, `N` or `N/s`. */
  rows?: string;
  burst?: string;
  /** Calls per UTC day, `N` or `N/day`. */
  quota?: string;
  concurrent?: string;
  name?: string;
  json?: boolean;
}

/** A number of 0 or more, optionally followed by `unit` (e.g. "/s"); throws naming the flag. */
function parseAmount(text: string, flag: string, unit: string, whole: boolean): number {
  const match = new RegExp(`^(\\d+(?:\\.\\d+)?)(?:${unit.replace('/', '\\/')})?$`).exec(text.trim());
  const value = match ? Number(match[1]) : Number.NaN;
  if (!Number.isFinite(value) || (whole && !Number.isInteger(value))) {
    throw new Error(`${flag} '${text}' must be ${whole ? 'a whole number' : 'a number'} of 0 or more${unit ? `, optionally followed by ${unit}` : ''} (0: unlimited)`);
  }
  return value;
}

/** The key's limits from the flags; throws naming the flag at fault. */
function parseKeyLimits(options: Pick<CreateKeyOptions, 'rate' | 'rows' | 'burst' | 'quota' | 'concurrent'>): KeyLimits {
  const read = (text: string | undefined, flag: string, unit: string, whole: boolean) => (text === undefined ? 0 : parseAmount(text, flag, unit, whole));
  return {
    requestsPerSecond: read(options.rate, '--rate', '/s', false),
    rowsPerSecond: read(options.rows, '--rows', '/s', false),
    burst: read(options.burst, '--burst', '', true),
    dailyQuota: read(options.quota, '--quota', '/day', true),
    maxConcurrent: read(options.concurrent, '--concurrent', '', true),
  };
}

/** `10/s burst 20, 500 rows/s, 5000/day, 4 at once`, or `none`. */
function formatLimits(limits: KeyLimits | undefined): string {
  if (!limits) return 'none';
  const parts = [
    limits.requestsPerSecond ? `${limits.requestsPerSecond}/s${limits.burst ? ` burst ${limits.burst}` : ''}` : '',
    limits.rowsPerSecond ? `${limits.rowsPerSecond} rows/s` : '',
    limits.dailyQuota ? `${limits.dailyQuota}/day` : '',
    limits.maxConcurrent ? `${limits.maxConcurrent} at once` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

const formatModels = (info: KeyInfo) => (info.models.length > 0 ? info.models.join(' ') : 'all');

export async function createKey(options: CreateKeyOptions): Promise<number> {
  let limits: KeyLimits;
  try {
    limits = parseKeyLimits(options);
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const client = keysClient(options.registry);
  try {
    const { key, info } = await unaryCall<CreateKeyResponse>((done) => client.createKey(CreateKeyRequest.fromPartial({
      name: options.name ?? '', role: options.role, models: options.models ?? [], limits,
    }), done));
    if (options.json) {
      printJson({ key, id: info!.id });
      return ExitCode.OK;
    }
    console.log(`created key ${info!.id}: role ${info!.role}, models ${formatModels(info!)}, limits ${formatLimits(info!.limits)}`);
    console.log(key);
    console.log('this is the only time the key is shown: keep it somewhere safe (the registry stores only its hash)');
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, 'could not create the key');
  } finally {
    client.close();
  }
}

export async function listKeys(options: { registry: string; json?: boolean }): Promise<number> {
  const client = keysClient(options.registry);
  try {
    const { keys } = await unaryCall<ListKeysResponse>((done) => client.listKeys({}, done));
    if (options.json) {
      printJson(keys);
    } else if (keys.length === 0) {
      console.log('no keys yet: create one with `nexus keys create --role infer`');
    } else {
      printTable(['id', 'name', 'role', 'models', 'limits', 'created', 'by', 'revoked'], keys.map((info) => [
        info.id, info.name || '-', info.role, formatModels(info), formatLimits(info.limits), formatTime(info.createdAtUnixMs), info.createdBy,
        info.revokedAtUnixMs ? formatTime(info.revokedAtUnixMs) : '-',
      ]));
    }
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, 'could not list the keys');
  } finally {
    client.close();
  }
}

/** Revokes a key by its id; a whole key (`nxk_<id>_…`) is taken for its id. */
export async function revokeKey(idOrKey: string, options: { registry: string; json?: boolean }): Promise<number> {
  const id = /^nxk_([0-9a-f]{12})_/.exec(idOrKey)?.[1] ?? idOrKey;
  const client = keysClient(options.registry);
  try {
    const { info } = await unaryCall<RevokeKeyResponse>((done) => client.revokeKey({ id }, done));
    // Revoking twice keeps the first time, so the time says when it stopped working.
    if (options.json) printJson(info);
    else console.log(`key ${id} is revoked (since ${formatTime(info!.revokedAtUnixMs)} UTC); servers refuse it from now on`);
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not revoke key ${id}`);
  } finally {
    client.close();
  }
}
