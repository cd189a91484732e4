#!/usr/bin/env node
/** nexus: the NexusML command line. */
import { Command, Option } from 'commander';
import { DEFAULT_BATCHING_POLICY } from '../router/batch-queue.ts';
import { defaultDataDir, defaultRegistryAddress, defaultRouterAddress } from './config.ts';
import { reportOutcome, showExperiment } from './commands/experiment.ts';
import { infer } from './commands/infer.ts';
import { listModels } from './commands/models.ts';
import { storeModel } from './commands/store.ts';
import { up } from './commands/up.ts';
import { ExitCode } from './output.ts';

const collect = (value: string, previous: string[]) => [...previous, value];
const registryOption = () => new Option('--registry <host:port>', 'registry address (env NEXUS_REGISTRY)').default(defaultRegistryAddress());
const routerOption = () => new Option('--router <host:port>', 'router address (env NEXUS_ROUTER)').default(defaultRouterAddress());

const program = new Command('nexus')
  .description('Version ML models against the git commit that made them, and serve them on any GPU.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE));

program.command('up')
  .description('start a registry, an executor and a router on this machine')
  .option('--host <host>', 'interface the router and registry listen on', '127.0.0.1')
  .option('--port <port>', 'router port', '8001')
  .option('--registry-port <port>', 'registry port', '8011')
  .option('--executors <count>', 'executor processes to start', '1')
  .option('--data-dir <dir>', 'where models, caches and logs live (env NEXUS_HOME)', defaultDataDir())
  .option('--example', 'train the Iris example model and serve it')
  .option('--max-batch-size <rows>', `default max batch size (${DEFAULT_BATCHING_POLICY.maxBatchSize})`)
  .option('--max-queue-delay-us <us>', `default max queue delay (${DEFAULT_BATCHING_POLICY.maxQueueDelayMs * 1000} us)`)
  .action(async (options) => process.exit(await up(options)));

program.command('store')
  .description('upload a model file as a new version, recording the git commit it came from')
  .argument('<file>', 'the model file (ONNX)')
  .argument('<name>', 'the model name')
  .addOption(registryOption())
  .option('--format <format>', 'artifact format', 'onnx')
  .addOption(new Option('--tag <key=value>', 'a tag (repeatable)').argParser(collect).default([]))
  .option('--max-batch-size <rows>', 'the router batches at most this many rows')
  .option('--max-queue-delay-us <us>', 'the router holds a request at most this long for a batch')
  .option('--json', 'print the version record as JSON')
  .action(async (file: string, name: string, options) => process.exit(await storeModel(file, name, options)));

program.command('models')
  .description('list models with their latest version')
  .addOption(registryOption())
  .option('--json', 'print JSON')
  .action(async (options) => process.exit(await listModels(options)));

program.command('infer')
  .description('run one inference through the router')
  .argument('<model>', 'the model name')
  .addOption(routerOption())
  .option('--version <n>', 'a version number (default: the latest)')
  .option('--data <json>', 'the input of a one-input model, as a nested JSON array, e.g. [[5.1,3.5,1.4,0.2]]')
  .addOption(new Option('--input <name=json>', 'a named input (repeatable)').argParser(collect).default([]))
  .option('--timeout-ms <ms>', 'deadline for the call', '30000')
  .option('--json', 'print JSON')
  .action(async (model: string, options) => process.exit(await infer(model, options)));

program.command('experiment')
  .description("show an A/B split's arms: traffic, errors, latency, outcomes and Welch t-tests")
  .argument('<model>', 'the model name')
  .addOption(routerOption())
  .option('--json', 'print JSON')
  .action(async (model: string, options) => process.exit(await showExperiment(model, options)));

program.command('outcome')
  .description('report a numeric outcome for the version that answered a request')
  .argument('<model>', 'the model name')
  .argument('<version>', 'the version that answered (ModelInferResponse.model_version)')
  .argument('<value>', 'the outcome, e.g. 1 for a click')
  .addOption(routerOption())
  .action(async (model: string, version: string, value: string, options) => process.exit(await reportOutcome(model, version, value, options)));

await program.parseAsync();
