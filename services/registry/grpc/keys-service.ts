/**
 * nexus.auth.v1.Keys over the registry's KeyStore: CreateKey returns the whole key once (only its
 * hash is stored), ListKeys and RevokeKey show records without secrets or hashes, and WatchKeys
 * streams every key's verifier, then each change, to routers that check keys themselves. Creations
 * and revocations are recorded in the audit log; no key or secret is ever logged.
 */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type {
  CreateKeyRequest, CreateKeyResponse, KeyInfo, ListKeysResponse, RevokeKeyRequest, RevokeKeyResponse, WatchKeysRequest,
  WatchKeysResponse,
} from '../../protocol/generated/nexus/auth/v1/keys.ts';
import { serverStream, unary } from '../../rpc/handlers.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { AuditLog, KeyStore } from '../core/index.ts';
import { checkKeyId, checkKeyRequest } from '../validation/index.ts';
import { createAuditTrail } from './audit-trail.ts';

export interface KeysServiceHandle {
  implementation: UntypedServiceImplementation;
  /** Ends every WatchKeys stream (routers re-subscribe elsewhere). */
  closeWatchers(): void;
}

/** `role admin, models iris-* resnet, name 'ci'`: a key's grants for the audit log. */
function describeKey(info: KeyInfo): string {
  const limits = Object.entries(info.limits ?? {}).filter(([, value]) => value !== 0).map(([name, value]) => `${name} ${value}`);
  return [
    `role ${info.role}`, `models ${info.models.length > 0 ? info.models.join(' ') : 'all'}`,
    ...(limits.length > 0 ? [`limits ${limits.join(', ')}`] : []), ...(info.name ? [`name '${info.name}'`] : []),
  ].join(', ');
}

/** The handlers of nexus.auth.v1.Keys over `keys`, recording changes in `audit`. */
export function createKeysService(keys: KeyStore, audit: AuditLog, logger: Logger): KeysServiceHandle {
  const watchers = new Set<() => void>();
  const audited = createAuditTrail(audit, logger);

  const implementation: UntypedServiceImplementation = {
    createKey: unary('CreateKey', logger, (request: CreateKeyRequest, call) => audited(call, 'CreateKey', async (note, principal): Promise<CreateKeyResponse> => {
      const created = await keys.create(checkKeyRequest(request), principal.id);
      const info = created.verifier.info!;
      note.target = `key:${info.id}`;
      note.detail = describeKey(info);
      logger.info({ key_id: info.id, role: info.role, models: info.models, created_by: info.createdBy }, 'key created');
      return { key: created.key, info };
    })),

    listKeys: unary('ListKeys', logger, async (): Promise<ListKeysResponse> => ({
      keys: (await keys.list()).map((verifier) => verifier.info!),
    })),

    revokeKey: unary('RevokeKey', logger, (request: RevokeKeyRequest, call) => audited(call, 'RevokeKey', async (note): Promise<RevokeKeyResponse> => {
      note.target = `key:${request.id.slice(0, 64)}`;
      checkKeyId(request.id);
      const { info, revokedNow } = await keys.revoke(request.id);
      note.detail = revokedNow ? 'revoked' : `revoked already, at ${new Date(info.revokedAtUnixMs).toISOString()}`;
      logger.info({ key_id: info.id }, revokedNow ? 'key revoked' : 'key was revoked already');
      return { info };
    })),

    watchKeys: serverStream('WatchKeys', logger, async (_request: WatchKeysRequest, call: ServerWritableStream<WatchKeysRequest, WatchKeysResponse>) => {
      let stop!: () => void;
      const ended = new Promise<void>((resolve) => (stop = resolve));
      call.on('cancelled', stop);
      watchers.add(stop);
      try {
        const unsubscribe = await keys.follow(
          (verifiers) => call.write({ snapshot: true, keys: verifiers }),
          (verifier) => call.write({ snapshot: false, keys: [verifier] }),
        );
        try {
          await ended;
        } finally {
          unsubscribe();
        }
      } finally {
        watchers.delete(stop);
      }
    }),
  };

  return {
    implementation,
    closeWatchers: () => {
      for (const stop of [...watchers]) stop();
    },
  };
}
