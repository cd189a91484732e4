/** The registry's gRPC client as a RegistryView: one call each, with a 10 s deadline. */
import { Metadata } from '@grpc/grpc-js';
import {
  GetVersionRequest, ListAliasesRequest, type RegistryClient,
} from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import { injectIntoMetadata } from '../../telemetry/tracing.ts';
import type { RegistryView } from './registry-view.ts';

const REGISTRY_DEADLINE_MS = 10_000;

/** A refusal the registry meant (bad name, no such model) stays; anything else means it was not reached. */
function registryError(error: unknown): NexusError {
  const coded = NexusError.from(error);
  if (coded.code === ErrorCode.INVALID_ARGUMENT || coded.code === ErrorCode.NOT_FOUND) return coded;
  return new NexusError(ErrorCode.UNAVAILABLE, `the registry could not be reached: ${coded.message}`);
}

/** Adapts `client`; the version read carries the caller's trace. */
export function grpcRegistryView(client: RegistryClient): RegistryView {
  return {
    getVersion: (modelName, version) => new Promise((resolve, reject) => {
      client.getVersion(GetVersionRequest.fromPartial({ modelName, version }), injectIntoMetadata(new Metadata()),
        { deadline: Date.now() + REGISTRY_DEADLINE_MS }, (error, response) => {
          if (error) reject(registryError(error));
          else if (!response?.version) reject(new NexusError(ErrorCode.INTERNAL, 'the registry returned no version'));
          else resolve(response.version);
        });
    }),
    listAliases: (modelName) => new Promise((resolve, reject) => {
      client.listAliases(ListAliasesRequest.fromPartial({ modelName }), new Metadata(), { deadline: Date.now() + REGISTRY_DEADLINE_MS },
        (error, response) => (error ? reject(registryError(error)) : resolve(response.aliases)));
    }),
    listVersions: (modelName) => new Promise((resolve, reject) => {
      client.listVersions({ modelName }, (error, response) => {
        if (error) reject(NexusError.from(error));
        else resolve(response.versions.map((version) => version.version));
      });
    }),
  };
}
