/** nexus.router.v1.Experiments: the results of A/B splits, and the outcomes clients report. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  ExperimentsService, type GetExperimentRequest, type GetExperimentResponse, type ReportOutcomeRequest,
} from '../../protocol/generated/nexus/router/v1/experiments.ts';
import { invalidArgument, notFound } from '../../domain/index.ts';
import { unary } from '../../rpc/handlers.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { ModelCatalog } from '../models/index.ts';
import { isAcceptedOutcome, MAX_OUTCOME_MAGNITUDE } from '../features/index.ts';

/** The handlers of nexus.router.v1.Experiments over the catalog's splits. */
export function createExperimentService(catalog: ModelCatalog, logger: Logger): UntypedServiceImplementation {
  const experimentOf = (modelName: string, alias: string) => {
    if (modelName === '') throw invalidArgument('model_name is required');
    return catalog.experimentFor(modelName, alias);
  };
  return {
    getExperiment: unary('GetExperiment', logger, async (request: GetExperimentRequest): Promise<GetExperimentResponse> =>
      experimentOf(request.modelName, request.alias).report(request.modelName)),

    reportOutcome: unary('ReportOutcome', logger, async (request: ReportOutcomeRequest) => {
      if (!isAcceptedOutcome(request.value)) {
        throw invalidArgument(`value must be a finite number within ±${MAX_OUTCOME_MAGNITUDE}, got ${request.value}`);
      }
      const experiment = experimentOf(request.modelName, request.alias);
      if (!experiment.has(request.modelVersion)) {
        throw notFound(`version ${request.modelVersion} is not an arm of ${request.modelName}'s split (arms: ${experiment.split.arms.map((arm) => arm.version).join(', ')})`);
      }
      experiment.recordOutcome(request.modelVersion, request.value);
      return {};
    }),
  };
}

export { ExperimentsService };
