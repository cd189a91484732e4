/**
 * Aliases (production, staging, …) and their append-only history.
 *
 *   models/<name>/aliases/<alias>.json                where it points now, and its latest move
 *   models/<name>/alias-history/<alias>/0000000001.json  every move, created once, never rewritten
 *
 * A move reads the current record with its etag, checks the caller's expectation, and writes the
 * next record with compare-and-swap on that etag: of two racing moves exactly one wins, and the
 * other re-reads and either fails (its expectation is stale: FAILED_PRECONDITION, nothing
 * changed) or, with no expectation, moves from the new state. The record carries its latest move,
 * so the history entry written right after the swap can always be rewritten by whoever comes next
 * should the writer die in between: no move is ever missing from the history.
 */
import { Alias, AliasMove } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, failedPrecondition, NexusError, notFound } from '../../domain/index.ts';
import { PreconditionFailedError, type ObjectStore } from '../store/index.ts';
import type { AliasDestination, MoveRequest } from '../validation/index.ts';

/** What the alias record holds: where it points, and the move that put it there. */
interface AliasRecord {
  alias: Alias;
  lastMove: AliasMove;
}

const aliasesPrefix = (modelName: string) => `models/${modelName}/aliases/`;
const aliasKey = (modelName: string, alias: string) => `${aliasesPrefix(modelName)}${alias}.json`;
const historyPrefix = (modelName: string, alias: string) => `models/${modelName}/alias-history/${alias}/`;
const historyKey = (modelName: string, alias: string, revision: number) =>
  `${historyPrefix(modelName, alias)}${String(revision).padStart(10, '0')}.json`;

/** Moves retried after losing a race before giving up with ABORTED. */
const MAX_ATTEMPTS = 50;

/** True when two destinations send the same traffic to the same places. */
export function sameDestination(a: AliasDestination, b: AliasDestination): boolean {
  return a.version === b.version && a.stickyParameter === b.stickyParameter && a.split.length === b.split.length
    && a.split.every((arm, index) => arm.version === b.split[index].version && arm.weight === b.split[index].weight);
}

const destinationOf = (move: AliasMove): AliasDestination =>
  ({ version: move.toVersion, split: move.toSplit, stickyParameter: move.toStickyParameter });

/**
 * The destination a rollback returns to: the one before the latest promotion still in effect.
 * Promotions push their destination and rollbacks pop, so rolling back twice walks back two
 * steps. Undefined when there is no earlier destination.
 */
export function rollbackTarget(moves: AliasMove[]): AliasDestination | undefined {
  const targets: AliasDestination[] = [];
  for (const move of moves) {
    if (move.rollback) targets.pop();
    else targets.push(destinationOf(move));
  }
  return targets.length >= 2 ? targets[targets.length - 2] : undefined;
}

const encode = (value: unknown) => Buffer.from(JSON.stringify(value, null, 2));

function parseRecord(body: Uint8Array): AliasRecord {
  const raw = JSON.parse(Buffer.from(body).toString('utf8')) as { alias: unknown; lastMove: unknown };
  return { alias: Alias.fromJSON(raw.alias), lastMove: AliasMove.fromJSON(raw.lastMove) };
}

export class AliasRecords {
  private readonly store: ObjectStore;
  /** Called after every move is recorded (the event log). */
  private readonly onMove: (move: AliasMove) => Promise<void>;

  constructor(store: ObjectStore, onMove: (move: AliasMove) => Promise<void>) {
    this.store = store;
    this.onMove = onMove;
  }

  private async readRecord(modelName: string, alias: string): Promise<{ record: AliasRecord; etag: string } | undefined> {
    const stored = await this.store.get(aliasKey(modelName, alias));
    if (!stored) return undefined;
    try {
      return { record: parseRecord(stored.body), etag: stored.etag };
    } catch (error) {
      throw new NexusError(ErrorCode.DATA_LOSS, `alias record ${modelName}@${alias} is unreadable`, { cause: error });
    }
  }

  /** Where an alias points; undefined when it was never set. */
  async get(modelName: string, alias: string): Promise<Alias | undefined> {
    return (await this.readRecord(modelName, alias))?.record.alias;
  }

  /** Every alias of a model, sorted by name. */
  async list(modelName: string): Promise<Alias[]> {
    const aliases: Alias[] = [];
    for await (const info of this.store.list(aliasesPrefix(modelName))) {
      const match = /\/([^/]+)\.json$/.exec(info.key);
      if (!match) continue;
      const alias = await this.get(modelName, match[1]);
      if (alias) aliases.push(alias);
    }
    return aliases.sort((a, b) => a.alias.localeCompare(b.alias));
  }

  /** Every move of an alias, oldest first, revisions 1..n without gaps. */
  async history(modelName: string, alias: string): Promise<AliasMove[]> {
    const current = await this.readRecord(modelName, alias);
    if (!current) return [];
    // A writer that died between the swap and the history write left its move only in the record.
    await this.writeHistory(current.record.lastMove);
    const moves: AliasMove[] = [];
    for await (const info of this.store.list(historyPrefix(modelName, alias))) {
      const stored = await this.store.get(info.key);
      if (stored) moves.push(AliasMove.fromJSON(JSON.parse(Buffer.from(stored.body).toString('utf8'))));
    }
    moves.sort((a, b) => a.revision - b.revision);
    return moves.filter((move) => move.revision <= current.record.alias.revision);
  }

  private async writeHistory(move: AliasMove): Promise<void> {
    try {
      await this.store.put(historyKey(move.modelName, move.alias, move.revision), encode(AliasMove.toJSON(move)), { ifNoneMatch: true });
    } catch (error) {
      // Already there: written by the mover, or by an earlier repair.
      if (!(error instanceof PreconditionFailedError)) throw error;
    }
  }

  /**
   * Points `alias` at `to` (whose versions the caller has checked exist). A move to where it
   * already points changes nothing and returns the move that put it there.
   */
  async move(request: MoveRequest, to: AliasDestination, rollback = false): Promise<{ alias: Alias; move: AliasMove }> {
    const { modelName, alias } = request;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.readRecord(modelName, alias);
      const currentVersion = current?.record.alias.version ?? 0;
      const currentRevision = current?.record.alias.revision ?? 0;
      if (request.expectedVersion !== undefined && request.expectedVersion !== currentVersion) {
        throw failedPrecondition(current
          ? `alias '${alias}' of model '${modelName}' points at version ${currentVersion}, not the expected ${request.expectedVersion}; nothing changed (read it again and retry)`
          : `alias '${alias}' of model '${modelName}' does not exist, but version ${request.expectedVersion} was expected; nothing changed`);
      }
      if (request.expectedRevision !== undefined && request.expectedRevision !== currentRevision) {
        throw failedPrecondition(current
          ? `alias '${alias}' of model '${modelName}' is at revision ${currentRevision}, not the expected ${request.expectedRevision}; nothing changed (read it again and retry)`
          : `alias '${alias}' of model '${modelName}' does not exist, but revision ${request.expectedRevision} was expected; nothing changed`);
      }
      const from: AliasDestination = {
        version: currentVersion, split: current?.record.alias.split ?? [], stickyParameter: current?.record.alias.stickyParameter ?? '',
      };
      if (current && sameDestination(from, to)) return { alias: current.record.alias, move: current.record.lastMove };
      if (current) await this.writeHistory(current.record.lastMove);

      const now = Date.now();
      const revision = currentRevision + 1;
      const move: AliasMove = {
        modelName, alias, revision, fromVersion: currentVersion, toVersion: to.version,
        actor: request.actor, movedAtUnixMs: now, reason: request.reason, rollback,
        fromSplit: from.split, toSplit: to.split, fromStickyParameter: from.stickyParameter, toStickyParameter: to.stickyParameter,
      };
      const next: AliasRecord = {
        alias: {
          modelName, alias, version: to.version, revision, updatedBy: request.actor, updatedAtUnixMs: now,
          split: to.split, stickyParameter: to.stickyParameter,
        },
        lastMove: move,
      };
      try {
        await this.store.put(aliasKey(modelName, alias), encode({ alias: Alias.toJSON(next.alias), lastMove: AliasMove.toJSON(move) }),
          current ? { ifMatch: current.etag } : { ifNoneMatch: true });
      } catch (error) {
        if (error instanceof PreconditionFailedError) continue; // moved meanwhile: look again
        throw error;
      }
      await this.writeHistory(move);
      await this.onMove(move);
      return { alias: next.alias, move };
    }
    throw new NexusError(ErrorCode.ABORTED, `alias '${alias}' of model '${modelName}' is moving too often to move it now; retry`);
  }

  /** Moves an alias back to its target before the latest promotion still in effect. */
  async rollback(request: MoveRequest): Promise<{ alias: Alias; move: AliasMove }> {
    const { modelName, alias } = request;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.get(modelName, alias);
      if (!current) throw notFound(`alias '${alias}' of model '${modelName}' does not exist`);
      if (request.expectedVersion !== undefined && request.expectedVersion !== current.version) {
        throw failedPrecondition(`alias '${alias}' of model '${modelName}' points at version ${current.version}, not the expected ${request.expectedVersion}; nothing changed (read it again and retry)`);
      }
      if (request.expectedRevision !== undefined && request.expectedRevision !== current.revision) {
        throw failedPrecondition(`alias '${alias}' of model '${modelName}' is at revision ${current.revision}, not the expected ${request.expectedRevision}; nothing changed (read it again and retry)`);
      }
      const target = rollbackTarget(await this.history(modelName, alias));
      if (target === undefined) {
        throw failedPrecondition(`alias '${alias}' of model '${modelName}' has no earlier target to roll back to (it points at version ${current.version})`);
      }
      try {
        // The swap expects the revision the target was computed from, so a concurrent move is never undone blindly.
        return await this.move({ ...request, expectedVersion: undefined, expectedRevision: current.revision }, target, true);
      } catch (error) {
        if (request.expectedVersion === undefined && request.expectedRevision === undefined && error instanceof NexusError && error.code === ErrorCode.FAILED_PRECONDITION) continue;
        throw error;
      }
    }
    throw new NexusError(ErrorCode.ABORTED, `alias '${alias}' of model '${modelName}' is moving too often to roll it back now; retry`);
  }
}
