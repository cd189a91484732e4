/** gRPC clients for the CLI, with promise helpers for unary calls. */
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { GRPCInferenceServiceClient } from '../../protocol/generated/inference/grpc_service.ts';
import { RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';

const LARGE_MESSAGES = { 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 };

export const registryClient = (address: string) => new RegistryClient(address, credentials.createInsecure(), LARGE_MESSAGES);
export const inferenceClient = (address: string) => new GRPCInferenceServiceClient(address, credentials.createInsecure(), LARGE_MESSAGES);

/**
 * Turns a callback-style unary call into a promise:
 *   const { latest } = await unaryCall<ListModelsResponse>((done) => client.listModels({}, done));
 */
export function unaryCall<Res>(invoke: (done: (error: ServiceError | null, response: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((error, response) => (error ? reject(error) : resolve(response)));
  });
}
