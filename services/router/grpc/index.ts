/** The router's gRPC services, thin handlers over the request path, the generation path, the task store and the catalog. */
export { createExperimentService, ExperimentsService } from './experiment-service.ts';
export { createInferenceService, GRPCInferenceServiceService } from './inference-service.ts';
export { createTaskService, TasksService } from './task-service.ts';
export { createGenerationService, GenerationService } from './generate-service.ts';
export { EXPERIMENTS_ACCESS, GENERATION_ACCESS, INFERENCE_ACCESS, TASKS_ACCESS } from './access.ts';
