/** The router's gRPC services, thin handlers over the request path, the task store and the catalog. */
export { cancellationOf, deadlineOf } from './call-context.ts';
export { createExperimentService, ExperimentsService } from './experiment-service.ts';
export { createInferenceService, GRPCInferenceServiceService, SERVER_NAME, SERVER_VERSION, type InferenceServiceParts } from './inference-service.ts';
export { createTaskService, TasksService } from './task-service.ts';
