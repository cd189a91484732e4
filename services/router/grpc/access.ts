/**
 * What each of the router's public methods requires (services/auth/access.ts). Reads and
 * inference need the 'infer' role, reporting an experiment's outcome needs 'write'; liveness and
 * readiness are open, as Kubernetes and load balancers probe them without credentials. A request
 * that names a model is checked against the credential's model globs before it runs; a
 * ModelStreamInfer message is checked on its own (inference-service.ts).
 */
import type { ServiceAccess } from '../../auth/access.ts';
import type { ModelInferRequest } from '../../protocol/generated/inference/grpc_service.ts';
import type { SubmitTaskRequest } from '../../protocol/generated/nexus/router/v1/tasks.ts';
import type { GenerateRequest, TokenizeRequest } from '../../protocol/generated/nexus/llm/v1/llm.ts';

const byName = (request: { name: string }) => request.name;
const byModelName = (request: { modelName: string }) => request.modelName;

export const INFERENCE_ACCESS: ServiceAccess = {
  serverLive: { open: true },
  serverReady: { open: true },
  serverMetadata: { role: 'infer' },
  modelReady: { role: 'infer', modelOf: byName },
  modelMetadata: { role: 'infer', modelOf: byName },
  modelInfer: { role: 'infer', modelOf: (request: ModelInferRequest) => request.modelName },
  modelStreamInfer: { role: 'infer' },
};

export const TASKS_ACCESS: ServiceAccess = {
  submitTask: { role: 'infer', modelOf: (request: SubmitTaskRequest) => request.request?.modelName },
  getTask: { role: 'infer' },
  watchTask: { role: 'infer' },
  cancelTask: { role: 'infer' },
};

export const EXPERIMENTS_ACCESS: ServiceAccess = {
  getExperiment: { role: 'infer', modelOf: byModelName },
  reportOutcome: { role: 'write', modelOf: byModelName },
};

export const GENERATION_ACCESS: ServiceAccess = {
  generate: { role: 'infer', modelOf: (request: GenerateRequest) => request.modelName },
  tokenize: { role: 'infer', modelOf: (request: TokenizeRequest) => request.modelName },
};
