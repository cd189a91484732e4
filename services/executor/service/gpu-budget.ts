/**
 * The executor's GPU memory budget: what its resident models may take together, and which idle
 * models to evict (least recently used first) when a new one would not fit. Pure decisions; the
 * state acts on them.
 */
import { invalidArgument } from '../../domain/index.ts';
import { BUDGET_ENV, DEFAULT_COMPILE_BUDGETS, type CompileBudgets } from '../compiler/index.ts';

/** GPU memory the executor's models may take together when NEXUS_GPU_BUDGET_BYTES is unset: 4 GiB. */
export const DEFAULT_GPU_BUDGET_BYTES = 4 * 1024 * 1024 * 1024;

/** A budget in bytes from an environment variable's value, else `fallback`. Throws INVALID_ARGUMENT naming it. */
export function budgetFromEnv(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const bytes = Number(value);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw invalidArgument(`${name}=${JSON.stringify(value)} is not a whole number of bytes >= 1`);
  return bytes;
}

/** The compile budgets set by environment variables (BUDGET_ENV names them); unset ones keep their defaults. */
export function compileBudgetsFromEnv(env: NodeJS.ProcessEnv): Partial<CompileBudgets> {
  const set = (Object.entries(BUDGET_ENV) as Array<[keyof CompileBudgets, string]>).filter(([, variable]) => env[variable]);
  return Object.fromEntries(set.map(([name, variable]) => [name, budgetFromEnv(variable, env[variable], DEFAULT_COMPILE_BUDGETS[name])]));
}

/** One resident model as the budget sees it. */
export interface ResidentUsage {
  readonly key: string;
  /** Bytes it holds on the GPU (weights plus its largest batch's activations). */
  readonly bytes: number;
  /** True when no batch runs on it and it is not being loaded or warmed. */
  readonly idle: boolean;
  /** When it last ran a batch or was loaded, in milliseconds (any monotonic clock). */
  readonly lastUsedMs: number;
}

/**
 * The models to evict, least recently used idle ones first, so that `needBytes` more fit in
 * `budgetBytes`; [] when they fit already; undefined when they do not fit even with every idle
 * model evicted (nothing should be evicted then).
 */
export function evictionsToFit(residents: readonly ResidentUsage[], needBytes: number, budgetBytes: number): string[] | undefined {
  let used = residents.reduce((total, resident) => total + resident.bytes, 0);
  if (used + needBytes <= budgetBytes) return [];
  const evicted: string[] = [];
  const candidates = residents.filter((resident) => resident.idle).sort((left, right) => left.lastUsedMs - right.lastUsedMs);
  for (const candidate of candidates) {
    evicted.push(candidate.key);
    used -= candidate.bytes;
    if (used + needBytes <= budgetBytes) return evicted;
  }
  return undefined;
}
