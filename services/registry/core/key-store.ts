/**
 * API key records in the registry's store, one object per key:
 *
 *   auth/keys/<id>.json    the key's KeyInfo fields and the sha256 of its secret (hex); never the secret
 *
 * A record is written create-only, so two keys never share an id, and changed only by revocation,
 * a compare-and-swap on the etag read, so a revocation is never lost to a concurrent one (and
 * revoking twice returns the first revocation). Records are never deleted by the registry.
 *
 * Changes reach subscribers (the Keys service's WatchKeys streams, the registry's own
 * authenticator) at once when made in this process, and within `pollIntervalMs` when made by
 * another registry process sharing the bucket: while anyone is subscribed, the store is listed
 * and every record whose size or time changed is read again and compared by etag.
 */
import { KeyInfo, type KeyVerifier } from '../../protocol/generated/nexus/auth/v1/keys.ts';
import { generateApiKey } from '../../auth/api-keys.ts';
import { ErrorCode, NexusError, notFound } from '../../domain/index.ts';
import { createLogger, type Logger } from '../../telemetry/logger.ts';
import { PreconditionFailedError, type ObjectInfo, type ObjectStore } from '../store/index.ts';
import { checkKeyId, type CheckedKeyRequest } from '../validation/index.ts';

const KEYS_PREFIX = 'auth/keys/';
const keyRecordKey = (id: string) => `${KEYS_PREFIX}${id}.json`;
const idOfRecordKey = (key: string) => /^auth\/keys\/([0-9a-f]{12})\.json$/.exec(key)?.[1];

/** Revocations retried after losing a race before giving up with ABORTED. */
const MAX_ATTEMPTS = 20;

/** Called with a key's verifier each time the key is created or revoked. */
export type KeyChangeListener = (verifier: KeyVerifier) => void;

const isRevoked = (verifier: KeyVerifier) => verifier.info!.revokedAtUnixMs > 0;

/**
 * Whether `next` is a later state of a key than `current`: a key only ever goes from valid to
 * revoked, so a valid record read or heard late never undoes a revocation.
 */
export const supersedes = (next: KeyVerifier, current: KeyVerifier | undefined) => !current || !isRevoked(current) || isRevoked(next);

/** A newly created key: the whole key, to show once, and its stored verifier. */
export interface CreatedKey {
  key: string;
  verifier: KeyVerifier;
}

export interface KeyStoreOptions {
  /** How often subscribers' view is refreshed from the store for other processes' changes, in ms. Default 3000. */
  pollIntervalMs?: number;
  /** Where unreadable records and poll failures are logged. Default: a logger for service 'registry'. */
  logger?: Logger;
}

/** What the poll remembers of one record, to tell whether it changed. */
interface SeenRecord {
  sizeBytes: number;
  modifiedAtMs: number;
  etag: string;
  verifier: KeyVerifier;
}

function encodeRecord(verifier: KeyVerifier): Buffer {
  return Buffer.from(JSON.stringify({ ...KeyInfo.toJSON(verifier.info!) as object, secretSha256: Buffer.from(verifier.secretSha256).toString('hex') }, null, 2));
}

function decodeRecord(key: string, body: Uint8Array): KeyVerifier {
  try {
    const raw = JSON.parse(Buffer.from(body).toString('utf8')) as { secretSha256?: unknown };
    if (typeof raw.secretSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(raw.secretSha256)) throw new Error('no secretSha256');
    const info = KeyInfo.fromJSON(raw);
    if (info.id !== idOfRecordKey(key)) throw new Error(`it names key '${info.id}'`);
    return { info, secretSha256: Buffer.from(raw.secretSha256, 'hex') };
  } catch (error) {
    throw new NexusError(ErrorCode.DATA_LOSS, `key record ${key} is unreadable`, { cause: error });
  }
}

export class KeyStore {
  private readonly store: ObjectStore;
  private readonly pollIntervalMs: number;
  private readonly logger: Logger;
  private readonly listeners = new Set<KeyChangeListener>();
  /** Keys announced revoked: a valid state of theirs is never announced after (see supersedes). */
  private readonly revokedIds = new Set<string>();
  /** Every record as the poll last saw it, by object key; filled while anyone is subscribed. */
  private seen: Map<string, SeenRecord> | undefined;
  private baseline: Promise<void> | undefined;
  private poller: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(store: ObjectStore, options: KeyStoreOptions = {}) {
    this.store = store;
    this.pollIntervalMs = options.pollIntervalMs ?? 3000;
    this.logger = options.logger ?? createLogger('registry');
  }

  /** Creates a key with a fresh id and secret, created by `createdBy` (a principal id or 'bootstrap'). */
  async create(request: CheckedKeyRequest, createdBy: string): Promise<CreatedKey> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const generated = generateApiKey();
      const verifier: KeyVerifier = {
        info: {
          id: generated.id, name: request.name, role: request.role, models: [...request.models], limits: { ...request.limits },
          createdBy, createdAtUnixMs: Date.now(), revokedAtUnixMs: 0,
        },
        secretSha256: generated.secretSha256,
      };
      let etag: string;
      try {
        etag = await this.store.put(keyRecordKey(generated.id), encodeRecord(verifier), { ifNoneMatch: true });
      } catch (error) {
        if (error instanceof PreconditionFailedError) continue; // a 48-bit id taken already: draw again
        throw error;
      }
      this.changed(keyRecordKey(generated.id), etag, verifier);
      return { key: generated.key, verifier };
    }
    throw new NexusError(ErrorCode.ABORTED, 'could not find a free key id; retry');
  }

  /** One key's record; undefined when there is none. */
  async get(id: string): Promise<KeyVerifier | undefined> {
    checkKeyId(id);
    return (await this.read(keyRecordKey(id)))?.verifier;
  }

  /** Every key, revoked ones included, oldest first; an unreadable record is logged and left out. */
  async list(): Promise<KeyVerifier[]> {
    const verifiers: KeyVerifier[] = [];
    for await (const info of this.store.list(KEYS_PREFIX)) {
      if (!idOfRecordKey(info.key)) continue;
      const found = await this.readSafely(info);
      if (found) verifiers.push(found.verifier);
    }
    return verifiers.sort((a, b) => a.info!.createdAtUnixMs - b.info!.createdAtUnixMs || a.info!.id.localeCompare(b.info!.id));
  }

  /**
   * Revokes a key now; NOT_FOUND when it does not exist. Revoking a revoked key changes nothing
   * and returns it as it is, with the time of its first revocation (`revokedNow` false).
   */
  async revoke(id: string): Promise<{ info: KeyInfo; revokedNow: boolean }> {
    checkKeyId(id);
    const key = keyRecordKey(id);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.read(key);
      if (!current) throw notFound(`no key with id '${id}'`);
      if (isRevoked(current.verifier)) return { info: current.verifier.info!, revokedNow: false };
      const revoked: KeyVerifier = { ...current.verifier, info: { ...current.verifier.info!, revokedAtUnixMs: Date.now() } };
      let etag: string;
      try {
        etag = await this.store.put(key, encodeRecord(revoked), { ifMatch: current.etag });
      } catch (error) {
        if (error instanceof PreconditionFailedError) continue; // revoked meanwhile: read it again
        throw error;
      }
      this.changed(key, etag, revoked);
      return { info: revoked.info!, revokedNow: true };
    }
    throw new NexusError(ErrorCode.ABORTED, `key '${id}' is changing too often to revoke it now; retry`);
  }

  /**
   * Calls `listener` with every key created or revoked from now on, here or (within the poll
   * interval) by another process. Resolves once the poll knows the store's current state, so a
   * snapshot read after it misses nothing. Returns the unsubscribe function.
   */
  async subscribe(listener: KeyChangeListener): Promise<() => void> {
    this.listeners.add(listener);
    const unsubscribe = () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopPolling();
    };
    try {
      await this.startPolling();
    } catch (error) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  /**
   * Every key as it is now (`onSnapshot`, once), then each change (`onChange`), with nothing
   * missed between the two and no change older than the snapshot. Returns the unsubscribe function.
   */
  async follow(onSnapshot: (verifiers: KeyVerifier[]) => void, onChange: KeyChangeListener): Promise<() => void> {
    let heardDuringSnapshot: KeyVerifier[] | undefined = [];
    const unsubscribe = await this.subscribe((verifier) => (heardDuringSnapshot ? heardDuringSnapshot.push(verifier) : onChange(verifier)));
    try {
      const byId = new Map((await this.list()).map((verifier) => [verifier.info!.id, verifier]));
      for (const verifier of heardDuringSnapshot) {
        if (supersedes(verifier, byId.get(verifier.info!.id))) byId.set(verifier.info!.id, verifier);
      }
      heardDuringSnapshot = undefined;
      onSnapshot([...byId.values()]);
    } catch (error) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  /** Stops polling and forgets every subscriber (on shutdown). */
  close(): void {
    this.listeners.clear();
    this.stopPolling();
  }

  private async read(key: string): Promise<{ verifier: KeyVerifier; etag: string } | undefined> {
    const stored = await this.store.get(key);
    return stored && { verifier: decodeRecord(key, stored.body), etag: stored.etag };
  }

  /** Tells subscribers about a change made here, and remembers its etag so the poll does not tell them again. */
  private changed(key: string, etag: string, verifier: KeyVerifier): void {
    const seen = this.seen?.get(key);
    // Size and time are unknown here: the next poll reads the record once and finds the same etag.
    this.seen?.set(key, { sizeBytes: seen?.sizeBytes ?? -1, modifiedAtMs: seen?.modifiedAtMs ?? -1, etag, verifier });
    this.notify(verifier);
  }

  private notify(verifier: KeyVerifier): void {
    if (isRevoked(verifier)) this.revokedIds.add(verifier.info!.id);
    else if (this.revokedIds.has(verifier.info!.id)) return;
    for (const listener of [...this.listeners]) {
      try {
        listener(verifier);
      } catch (error) {
        this.logger.error({ err: error }, 'key change listener failed');
      }
    }
  }

  private startPolling(): Promise<void> {
    this.baseline ??= this.poll(false).then(() => {
      if (this.listeners.size === 0 || this.poller) return;
      this.poller = setInterval(() => {
        this.polling ??= this.poll(true)
          .catch((error: unknown) => this.logger.warn({ err: error }, 'could not look for key changes in the store'))
          .finally(() => (this.polling = undefined));
      }, this.pollIntervalMs);
      this.poller.unref();
    }, (error: unknown) => {
      this.baseline = undefined;
      throw error;
    });
    return this.baseline;
  }

  private stopPolling(): void {
    clearInterval(this.poller);
    this.poller = undefined;
    this.baseline = undefined;
    this.seen = undefined;
  }

  /**
   * Lists the records and reads those whose size or time changed since the last poll; with
   * `announce`, tells subscribers about each whose etag changed. A record that vanished from the
   * store (deleted by hand) is announced as revoked: a key nobody can look up must not stay usable.
   */
  private async poll(announce: boolean): Promise<void> {
    // A copy: a key created here while the listing runs joins this.seen, but was never listed
    // by this poll, and must not count as vanished.
    const previous = new Map(this.seen ?? []);
    const next = new Map<string, SeenRecord>();
    const changes: KeyVerifier[] = [];
    for await (const info of this.store.list(KEYS_PREFIX)) {
      if (!idOfRecordKey(info.key)) continue;
      const known = previous.get(info.key);
      if (known && known.sizeBytes === info.sizeBytes && known.modifiedAtMs === info.modifiedAtMs) {
        next.set(info.key, known);
        continue;
      }
      const found = await this.readSafely(info);
      if (!found) {
        // Listed but unreadable now (a store error, a damaged record): it has not vanished.
        if (known) next.set(info.key, known);
        continue;
      }
      next.set(info.key, { sizeBytes: info.sizeBytes, modifiedAtMs: info.modifiedAtMs, etag: found.etag, verifier: found.verifier });
      if (known?.etag !== found.etag) changes.push(found.verifier);
    }
    for (const [key, known] of previous) {
      if (next.has(key) || isRevoked(known.verifier)) continue;
      this.logger.warn({ key_id: known.verifier.info!.id }, 'a key record vanished from the store; the key is refused from now on');
      changes.push({ ...known.verifier, info: { ...known.verifier.info!, revokedAtUnixMs: Date.now() } });
    }
    // A subscriber that left meanwhile stopped the poll; its state is not wanted any more.
    if (this.listeners.size === 0) return;
    // What this process changed while the poll ran was announced already: keep it, or the next poll announces it again.
    for (const [key, record] of this.seen ?? []) if (record !== previous.get(key)) next.set(key, record);
    this.seen = next;
    if (announce) for (const verifier of changes) this.notify(verifier);
  }

  private async readSafely(info: ObjectInfo): Promise<{ verifier: KeyVerifier; etag: string } | undefined> {
    try {
      return await this.read(info.key);
    } catch (error) {
      this.logger.error({ err: error, key: info.key }, 'unreadable key record left out');
      return undefined;
    }
  }
}
