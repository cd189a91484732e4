/**
 * The floor under the router's CPU per request: a bare grpc-js server of the same
 * GRPCInferenceService (the same generated codecs) whose ModelInfer answers an Iris-shaped
 * response at once, without routing, validation, batching, an executor, metrics or spans. The
 * instruction bench measures it beside the router, so the router's count reads as a multiple of
 * what any Node gRPC service pays per call.
 *
 *   node bench/cpu/echo-server.ts     prints {"event":"listening","address":...}; stops on SIGTERM
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { GRPCInferenceServiceService, type ModelInferRequest, type ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';

/** What the router answers for one Iris row: three class probabilities and its run parameters. */
const ANSWER: ModelInferResponse = {
  modelName: 'iris', modelVersion: '1', id: '',
  parameters: { nexus_cache_hit: { boolParam: false }, nexus_batch_size: { int64Param: 1 }, nexus_gpu_us: { int64Param: 10 }, nexus_queue_us: { int64Param: 10 } },
  outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 3], parameters: {}, contents: undefined }],
  rawOutputContents: [new Uint8Array(Float32Array.of(0.9, 0.07, 0.03).buffer)],
};

/** This file, for spawning it. */
export const ECHO_SERVER_SCRIPT = import.meta.filename;

if (import.meta.main) {
  const server = new Server();
  server.addService(GRPCInferenceServiceService, {
    modelInfer(call: ServerUnaryCall<ModelInferRequest, ModelInferResponse>, callback: sendUnaryData<ModelInferResponse>) {
      callback(null, { ...ANSWER, id: call.request.id });
    },
  });
  const port = await new Promise<number>((resolvePort, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolvePort(bound))));
  console.log(JSON.stringify({ event: 'listening', service: 'echo', address: `127.0.0.1:${port}` }));
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}
