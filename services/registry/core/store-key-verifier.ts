/**
 * How the registry authenticates API keys: from its own key store, through the same in-memory
 * KeyDirectory the routers fill from WatchKeys, kept current by the store's change feed. A key
 * the directory has not heard of yet (created a moment ago by another registry process sharing
 * the bucket, before the next poll) is read from the store once, so it works at once everywhere.
 */
import type { KeyVerifier } from '../../protocol/generated/nexus/auth/v1/keys.ts';
import type { ApiKeyVerifier, PresentedApiKey } from '../../auth/credentials.ts';
import { KeyDirectory } from '../../auth/key-directory.ts';
import type { Principal } from '../../auth/principal.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import { supersedes, type KeyStore } from './key-store.ts';

export class StoreKeyVerifier implements ApiKeyVerifier {
  private readonly keys: KeyStore;
  private readonly directory = new KeyDirectory();
  /** What the directory holds, by key id: to know a miss, and to never let a late read undo a revocation. */
  private readonly held = new Map<string, KeyVerifier>();
  private unsubscribe: (() => void) | undefined;

  private constructor(keys: KeyStore) {
    this.keys = keys;
  }

  /** A verifier that has read every key and follows each change until `close`. */
  static async open(keys: KeyStore): Promise<StoreKeyVerifier> {
    const verifier = new StoreKeyVerifier(keys);
    verifier.unsubscribe = await keys.follow((snapshot) => {
      verifier.held.clear();
      for (const key of snapshot) verifier.held.set(key.info!.id, key);
      verifier.directory.replace(snapshot);
    }, (change) => verifier.hold(change));
    return verifier;
  }

  authenticate(key: PresentedApiKey): Principal | Promise<Principal> {
    return this.held.has(key.id) ? this.directory.authenticate(key) : this.lookUp(key);
  }

  /** Stops following the store. */
  close(): void {
    this.unsubscribe?.();
  }

  private hold(verifier: KeyVerifier): void {
    const id = verifier.info!.id;
    if (!supersedes(verifier, this.held.get(id))) return;
    this.held.set(id, verifier);
    this.directory.apply(verifier);
  }

  private async lookUp(key: PresentedApiKey): Promise<Principal> {
    let stored: KeyVerifier | undefined;
    try {
      stored = await this.keys.get(key.id);
    } catch (error) {
      throw new NexusError(ErrorCode.UNAVAILABLE, 'credentials cannot be checked now: the key store cannot be read', { cause: error });
    }
    if (stored) this.hold(stored);
    return this.directory.authenticate(key);
  }
}
