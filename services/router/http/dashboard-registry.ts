/**
 * What the dashboard reads and changes in the registry, over the router's registry channel. Each
 * call carries the dashboard user's own `authorization` header when they sent one, so the
 * registry applies its roles, model globs and audit log to that user, not to the router.
 */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  GetAliasRequest, GetAliasHistoryRequest, ListModelsRequest, ListVersionsRequest, RollbackAliasRequest, SetAliasRequest,
  type Alias, type AliasMove, type GetAliasResponse, type GetAliasHistoryResponse, type ListModelsResponse, type ListVersionsResponse,
  type ModelVersion, type RegistryClient, type RollbackAliasResponse, type SetAliasResponse,
} from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';

export interface DashboardRegistry {
  /** The newest version of every model the caller may see. */
  listModels(authorization?: string): Promise<ModelVersion[]>;
  listVersions(modelName: string, authorization?: string): Promise<{ versions: ModelVersion[]; aliases: Alias[] }>;
  /** The alias now; undefined when it does not exist. */
  getAlias(modelName: string, alias: string, authorization?: string): Promise<Alias | undefined>;
  aliasHistory(modelName: string, alias: string, authorization?: string): Promise<AliasMove[]>;
  setAlias(request: SetAliasRequest, authorization?: string): Promise<SetAliasResponse>;
  rollbackAlias(request: RollbackAliasRequest, authorization?: string): Promise<RollbackAliasResponse>;
}

/** How long a dashboard call may wait for the registry. */
const REGISTRY_DEADLINE_MS = 10_000;

const metadataOf = (authorization: string | undefined) => {
  const metadata = new Metadata();
  if (authorization !== undefined) metadata.set('authorization', authorization);
  return metadata;
};

type Callback<T> = (error: ServiceError | null, response: T) => void;

/** A unary call whose failure keeps the registry's status code (NOT_FOUND, PERMISSION_DENIED, ...). */
function call<T>(start: (metadata: Metadata, options: { deadline: number }, done: Callback<T>) => void, authorization?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    start(metadataOf(authorization), { deadline: Date.now() + REGISTRY_DEADLINE_MS }, (error, response) => (error ? reject(NexusError.from(error)) : resolve(response)));
  });
}

/** The dashboard's registry over `client`. */
export function grpcDashboardRegistry(client: RegistryClient): DashboardRegistry {
  return {
    async listModels(authorization) {
      const response = await call<ListModelsResponse>((metadata, options, done) => client.listModels(ListModelsRequest.fromPartial({}), metadata, options, done), authorization);
      return response.latest;
    },
    async listVersions(modelName, authorization) {
      const response = await call<ListVersionsResponse>((metadata, options, done) =>
        client.listVersions(ListVersionsRequest.fromPartial({ modelName }), metadata, options, done), authorization);
      return { versions: response.versions, aliases: response.aliases };
    },
    async getAlias(modelName, alias, authorization) {
      try {
        const response = await call<GetAliasResponse>((metadata, options, done) =>
          client.getAlias(GetAliasRequest.fromPartial({ modelName, alias }), metadata, options, done), authorization);
        return response.alias;
      } catch (error) {
        if ((error as NexusError).code === ErrorCode.NOT_FOUND) return undefined;
        throw error;
      }
    },
    async aliasHistory(modelName, alias, authorization) {
      const response = await call<GetAliasHistoryResponse>((metadata, options, done) =>
        client.getAliasHistory(GetAliasHistoryRequest.fromPartial({ modelName, alias }), metadata, options, done), authorization);
      return response.moves;
    },
    setAlias: (request, authorization) => call<SetAliasResponse>((metadata, options, done) => client.setAlias(request, metadata, options, done), authorization),
    rollbackAlias: (request, authorization) => call<RollbackAliasResponse>((metadata, options, done) => client.rollbackAlias(request, metadata, options, done), authorization),
  };
}
