/** nexus experiment <model>: an A/B split's arms and significance; nexus outcome: report a result. */
import { ExperimentsClient, GetExperimentRequest, ReportOutcomeRequest, type GetExperimentResponse, type WelchTest } from '../../protocol/generated/nexus/router/v1/experiments.ts';
import { unaryCall } from '../remote/index.ts';
import { callInterceptors, routerChannelCredentials } from '../remote/credentials.ts';
import { ExitCode, printJson, printTable, reportError } from '../terminal/index.ts';

const experimentsClient = (address: string) => new ExperimentsClient(address, routerChannelCredentials(), { interceptors: callInterceptors() });
const fixed = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const verdict = (test: WelchTest | undefined) =>
  test ? `p=${test.pValue.toPrecision(3)}${test.pValue < 0.05 ? ' (differs)' : ''}` : 'not enough data';

export async function showExperiment(model: string, options: { router: string; alias?: string; json?: boolean }): Promise<number> {
  const client = experimentsClient(options.router);
  try {
    const report = await unaryCall<GetExperimentResponse>((done) => client.getExperiment(GetExperimentRequest.fromPartial({ modelName: model, alias: options.alias ?? '' }), done));
    if (options.json) {
      printJson(report);
      return ExitCode.OK;
    }
    console.log(`${model}${report.alias ? `@${report.alias}` : ''}: A/B split${report.alias ? ' (registry alias)' : ' (router config)'}${report.stickyParameter ? `, sticky by parameter '${report.stickyParameter}'` : ', random per request'}`);
    printTable(
      ['version', 'weight', 'requests', 'errors', 'latency ms (mean ± sd)', 'outcomes', 'outcome (mean ± sd)', 'vs control: outcome', 'vs control: latency'],
      report.arms.map((arm, index) => {
        const comparison = index === 0 ? undefined : report.comparisons.find((entry) => entry.version === arm.version);
        return [
          `${arm.version}${index === 0 ? ' (control)' : ''}`, arm.weight, arm.requests, arm.errors,
          `${fixed(arm.latencyMeanMs)} ± ${fixed(arm.latencyStddevMs)}`, arm.outcomes,
          `${fixed(arm.outcomeMean, 4)} ± ${fixed(arm.outcomeStddev, 4)}`,
          index === 0 ? '' : verdict(comparison?.outcome), index === 0 ? '' : verdict(comparison?.latency),
        ];
      }),
    );
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not read the experiment on ${model}`);
  } finally {
    client.close();
  }
}

export async function reportOutcome(model: string, version: string, value: string, options: { router: string; alias?: string }): Promise<number> {
  const client = experimentsClient(options.router);
  try {
    await unaryCall((done) => client.reportOutcome(ReportOutcomeRequest.fromPartial({ modelName: model, modelVersion: Number(version), value: Number(value), alias: options.alias ?? '' }), done));
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not report an outcome for ${model}`);
  } finally {
    client.close();
  }
}
