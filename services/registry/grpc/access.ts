/**
 * Who may call what on the registry: reads need the 'infer' role or a router
 * or executor certificate; uploads and alias moves 'write'; rollbacks, garbage collection, the
 * audit log and everything about keys 'admin'. WatchKeys is also open to the router's
 * certificate, which follows it to check keys itself. Requests that name a model are checked
 * against the caller's model globs (`modelOf`); UploadVersion, a client stream, is checked in its
 * handler once its header arrives.
 */
import type { ServiceAccess } from '../../auth/access.ts';
import type { KeysService } from '../../protocol/generated/nexus/auth/v1/keys.ts';
import type {
  GetAliasHistoryRequest, GetAliasRequest, GetVersionRequest, ListAliasesRequest, ListVersionsRequest, RegistryService,
  RollbackAliasRequest, SetAliasRequest, WatchRequest,
} from '../../protocol/generated/nexus/registry/v1/registry.ts';

const READ = { role: 'infer', services: ['router', 'executor'] } as const;

export const REGISTRY_ACCESS: { readonly [method in keyof typeof RegistryService]: ServiceAccess[string] } = {
  getVersion: { ...READ, modelOf: (request: GetVersionRequest) => request.modelName },
  listVersions: { ...READ, modelOf: (request: ListVersionsRequest) => request.modelName },
  listModels: READ,
  downloadArtifact: READ,
  statBlobs: READ,
  getAlias: { ...READ, modelOf: (request: GetAliasRequest) => request.modelName },
  listAliases: { ...READ, modelOf: (request: ListAliasesRequest) => request.modelName },
  getAliasHistory: { ...READ, modelOf: (request: GetAliasHistoryRequest) => request.modelName },
  // Without a model name it follows every model, as ListModels lists them.
  watch: { ...READ, modelOf: (request: WatchRequest) => request.modelName || undefined },
  uploadVersion: { role: 'write' },
  uploadBlob: { role: 'write' },
  setAlias: { role: 'write', modelOf: (request: SetAliasRequest) => request.modelName },
  rollbackAlias: { role: 'admin', modelOf: (request: RollbackAliasRequest) => request.modelName },
  garbageCollect: { role: 'admin' },
  listAudit: { role: 'admin' },
};

export const KEYS_ACCESS: { readonly [method in keyof typeof KeysService]: ServiceAccess[string] } = {
  createKey: { role: 'admin' },
  listKeys: { role: 'admin' },
  revokeKey: { role: 'admin' },
  watchKeys: { role: 'admin', services: ['router'] },
};
