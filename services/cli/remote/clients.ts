/**
 * gRPC clients for the CLI, with promise helpers for unary calls. Every client sends the CLI's
 * bearer token on every call, and the registry's is dialed over TLS when a CA is found (see
 * credentials.ts); the router's public port over TLS when --router-ca names its CA, else in plaintext.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { GRPCInferenceServiceClient } from '../../protocol/generated/inference/grpc_service.ts';
import { KeysClient } from '../../protocol/generated/nexus/auth/v1/keys.ts';
import { RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { callInterceptors, registryChannelCredentials, routerChannelCredentials } from './credentials.ts';

const LARGE_MESSAGES = { 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 };

export const registryClient = (address: string) =>
  new RegistryClient(address, registryChannelCredentials(), { ...LARGE_MESSAGES, interceptors: callInterceptors() });
/** nexus.auth.v1.Keys, which the registry serves on its own port. */
export const keysClient = (address: string) => new KeysClient(address, registryChannelCredentials(), { interceptors: callInterceptors() });
export const inferenceClient = (address: string) =>
  new GRPCInferenceServiceClient(address, routerChannelCredentials(), { ...LARGE_MESSAGES, interceptors: callInterceptors() });

/**
 * Turns a callback-style unary call into a promise:
 *   const { latest } = await unaryCall<ListModelsResponse>((done) => client.listModels({}, done));
 */
export function unaryCall<Res>(invoke: (done: (error: ServiceError | null, response: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((error, response) => (error ? reject(error) : resolve(response)));
  });
}
