#!/usr/bin/env node
/** nexus: the NexusML command line. */
import { Command, Option } from 'commander';
import { DEFAULT_BATCHING_POLICY } from '../domain/index.ts';
import { defaultDataDir, defaultRegistryAddress, defaultRouterAddress } from './config.ts';
import { reportOutcome, showExperiment } from './commands/experiment.ts';
import { infer } from './commands/infer.ts';
import { generate } from './commands/generate.ts';
import { chat } from './commands/chat.ts';
import { listModels } from './commands/models.ts';
import { storeModel } from './commands/store.ts';
import { collectGarbage } from './commands/gc.ts';
import { aliasHistory } from './commands/history.ts';
import { promote } from './commands/promote.ts';
import { pull } from './commands/pull.ts';
import { rollback } from './commands/rollback.ts';
import { showVersion } from './commands/show.ts';
import { listVersions } from './commands/versions.ts';
import { up } from './commands/up.ts';
import { listAudit } from './commands/audit.ts';
import { createKey, listKeys, revokeKey } from './commands/keys.ts';
import { initTls } from './commands/tls.ts';
import { configureConnection } from './remote/index.ts';
import { ExitCode } from './terminal/index.ts';

const collect = (value: string, previous: string[]) => [...previous, value];
const registryOption = () => new Option('--registry <host:port>', 'registry address (env NEXUS_REGISTRY)').default(defaultRegistryAddress());
const routerOption = () => new Option('--router <host:port>', 'router address (env NEXUS_ROUTER)').default(defaultRouterAddress());

const program = new Command('nexus')
  .description('Version ML models against the git commit that made them, and serve them on any GPU.')
  .version('0.1.0')
  // Program options only before the command: otherwise `nexus infer iris --version 2` would
  // print the CLI's version instead of asking for model version 2.
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE))
  .option('--token <token>', 'API key or JWT sent to the services (env NEXUS_TOKEN; default: $NEXUS_HOME/credentials/admin.key when readable)')
  .option('--ca-file <file>', "CA certificate that verifies the registry's TLS (env NEXUS_TLS_CA; default: $NEXUS_HOME/tls/ca.crt when it exists)")
  .option('--router-ca <file>', "CA certificate that verifies the router's public port when it serves TLS (env NEXUS_ROUTER_CA; default: plaintext)")
  .hook('preAction', () => configureConnection(program.opts<{ token?: string; caFile?: string; routerCa?: string }>()));

program.command('up')
  .description('start a registry, an executor and a router on this machine')
  .option('--host <host>', 'interface the router and registry listen on', '127.0.0.1')
  .option('--port <port>', 'router port', '8001')
  .option('--registry-port <port>', 'registry port', '8011')
  .option('--executors <count>', 'executor processes to start', '1')
  .option('--gpus <all|0,2>', 'one executor per WebGPU adapter, each pinned to it (--adapter): all, or indices from `node services/executor/main.ts --list-adapters`')
  .option('--data-dir <dir>', 'where models, caches and logs live (env NEXUS_HOME)', defaultDataDir())
  .option('--example', 'train the Iris example model and serve it')
  .option('--max-batch-size <rows>', `default max batch size (${DEFAULT_BATCHING_POLICY.maxBatchSize})`)
  .option('--max-queue-delay-us <us>', `default max queue delay (${DEFAULT_BATCHING_POLICY.maxQueueDelayMs * 1000} us)`)
  .action(async (options) => process.exit(await up(options)));

program.command('store')
  .description('upload a model file or directory as a new version, tied to the git commit it came from')
  .argument('<path>', 'the model: an ONNX file, or a directory (safetensors, config.json, tokenizer files, ...)')
  .argument('<name>', 'the model name')
  .addOption(registryOption())
  .option('--format <format>', 'artifact format (default: onnx for a file; safetensors or directory for a directory)')
  .option('--alias <alias>', 'point this alias (e.g. production) at the new version')
  .addOption(new Option('--tag <key=value>', 'a tag (repeatable)').argParser(collect).default([]))
  .option('--allow-dirty', 'store even if tracked files have uncommitted changes (they are recorded)')
  .option('--precision <fp32|fp16>', 'how executors run it: fp32 (safe) or fp16 (fast, where the GPU has shader-f16); default: the executor\'s NEXUS_PRECISION')
  .option('--labels <file>', 'class labels, one per line (line i names class i): classification requests answer score:index:label')
  .option('--max-batch-size <rows>', 'the router batches at most this many rows')
  .option('--max-queue-delay-us <us>', 'the router holds a request at most this long for a batch')
  .option('--json', 'print the version record as JSON')
  .action(async (path: string, name: string, options) =>
    process.exit(await storeModel(path, name, { ...options, refuseDirty: !options.allowDirty })));

program.command('versions')
  .description('list every version of a model, with its aliases and commit')
  .argument('<name>', 'the model name')
  .addOption(registryOption())
  .option('--json', 'print JSON')
  .action(async (name: string, options) => process.exit(await listVersions(name, options)));

program.command('show')
  .description('show one version in full: lineage, signature, files, aliases')
  .argument('<ref>', 'name (the newest), name:version, or name@alias')
  .addOption(registryOption())
  .option('--json', 'print JSON')
  .action(async (ref: string, options) => process.exit(await showVersion(ref, options)));

program.command('promote')
  .description('point an alias at a version, or split its traffic between versions (compare-and-swap: a concurrent move makes this fail)')
  .argument('<name>', 'the model name')
  .argument('<target>', 'a version number, or a split by weight with the control first, e.g. 3=90,4=10')
  .argument('<alias>', 'the alias, e.g. production or staging')
  .addOption(registryOption())
  .option('--sticky <parameter>', 'with a split: the request parameter (e.g. user) that keeps a client on one arm; default random per request')
  .option('--reason <text>', 'why, recorded in the alias history')
  .option('--expect <version>', 'fail unless the alias points at this version now (0: unset); default: the alias exactly as read (revision)')
  .option('--json', 'print JSON')
  .action(async (name: string, target: string, alias: string, options) => process.exit(await promote(name, target, alias, options)));

program.command('rollback')
  .description('move an alias back to its target before the latest promotion')
  .argument('<name>', 'the model name')
  .argument('<alias>', 'the alias')
  .addOption(registryOption())
  .option('--reason <text>', 'why, recorded in the alias history')
  .option('--expect <version>', 'fail unless the alias points at this version now')
  .option('--json', 'print JSON')
  .action(async (name: string, alias: string, options) => process.exit(await rollback(name, alias, options)));

program.command('history')
  .description("show an alias's history: who moved it, when, from which version to which, and why")
  .argument('<name>', 'the model name')
  .argument('<alias>', 'the alias')
  .addOption(registryOption())
  .option('--json', 'print JSON')
  .action(async (name: string, alias: string, options) => process.exit(await aliasHistory(name, alias, options)));

program.command('pull')
  .description("download a version's files into a directory, verified by sha256, resuming interrupted downloads")
  .argument('<ref>', 'name (the newest), name:version, or name@alias')
  .argument('<dir>', 'where to put the files')
  .addOption(registryOption())
  .option('--json', 'print JSON')
  .action(async (ref: string, dir: string, options) => process.exit(await pull(ref, dir, options)));

program.command('gc')
  .description('list blobs no version refers to and abandoned uploads; --delete removes them')
  .addOption(registryOption())
  .option('--delete', 'delete them (default: only list)')
  .option('--min-age-seconds <s>', 'keep objects younger than this (an upload may still refer to them)', '3600')
  .option('--json', 'print JSON')
  .action(async (options) => process.exit(await collectGarbage(options)));

program.command('models')
  .description('list models with their latest version')
  .addOption(registryOption())
  .option('--json', 'print JSON')
  .action(async (options) => process.exit(await listModels(options)));

program.command('infer')
  .description('run one inference through the router')
  .argument('<model>', 'the model name')
  .addOption(routerOption())
  .option('--version <n>', "a version number, an alias (e.g. staging) or 'latest' (default: the production alias, else the latest)")
  .option('--data <json>', 'the input of a one-input model, as a nested JSON array, e.g. [[5.1,3.5,1.4,0.2]]')
  .addOption(new Option('--input <name=json>', 'a named input (repeatable)').argParser(collect).default([]))
  .addOption(new Option('--param <key=value>', 'a request parameter, e.g. priority=1, timeout=50000 (us), user=42 for a sticky A/B split (repeatable)').argParser(collect).default([]))
  .option('--timeout-ms <ms>', 'deadline for the call', '30000')
  .option('--classes <k>', 'answer each output as its top k classes, with the version\'s labels (nexus store --labels)')
  .option('--json', 'print JSON')
  .action(async (model: string, options) => process.exit(await infer(model, options)));

/** The sampling flags of `generate` and `chat`. */
const withSamplingFlags = (command: Command) => command
  .addOption(routerOption())
  .option('--version <n>', "a version number, an alias or 'latest' (default: the production alias, else the latest)")
  .option('--max-tokens <n>', 'most tokens to generate (default 256, or what the model\'s context leaves)')
  .option('--temperature <t>', '0 for greedy; default 1')
  .option('--top-p <p>', 'nucleus sampling: keep the most likely tokens up to this probability (default 1: all)')
  .option('--top-k <k>', 'keep only the k most likely tokens (default 0: all)')
  .option('--seed <s>', 'the same seed, prompt and flags give the same text')
  .addOption(new Option('--stop <text>', 'stop when the text reaches this (repeatable); it is not printed').argParser(collect).default([]))
  .option('--timeout-ms <ms>', 'deadline for each generation', '120000');

withSamplingFlags(program.command('generate')
  .description('generate text with a stored language model, printing tokens as they arrive (summary on stderr)')
  .argument('<model>', 'the model name')
  .argument('<prompt>', 'the prompt text'))
  .action(async (model: string, prompt: string, options) => process.exit(await generate(model, prompt, options)));

withSamplingFlags(program.command('chat')
  .description("chat with a stored language model: each line is a message, the model's chat template applies, the history is kept")
  .argument('<model>', 'the model name')
  .option('--system <text>', 'a system message that starts the conversation'))
  .action(async (model: string, options) => process.exit(await chat(model, options)));

program.command('experiment')
  .description("show an A/B split's arms: traffic, errors, latency, outcomes and Welch t-tests")
  .argument('<model>', 'the model name')
  .addOption(routerOption())
  .option('--alias <alias>', "the alias whose split to show (default: the split unversioned requests follow)")
  .option('--json', 'print JSON')
  .action(async (model: string, options) => process.exit(await showExperiment(model, options)));

program.command('outcome')
  .description('report a numeric outcome for the version that answered a request')
  .argument('<model>', 'the model name')
  .argument('<version>', 'the version that answered (ModelInferResponse.model_version)')
  .argument('<value>', 'the outcome, e.g. 1 for a click')
  .addOption(routerOption())
  .option('--alias <alias>', 'the split the request went through (default: the one unversioned requests follow)')
  .action(async (model: string, version: string, value: string, options) => process.exit(await reportOutcome(model, version, value, options)));

const keys = program.command('keys').description('create, list and revoke API keys (needs an admin key)');

keys.command('create')
  .description('create an API key and print it, this once')
  .requiredOption('--role <role>', 'infer (read and run models), write (also store and promote) or admin (everything, keys included)')
  .option('--models <glob...>', 'model names or globs the key may use, e.g. iris resnet-* (default: every model)')
  .option('--rate <N/s>', 'calls per second (default unlimited)')
  .option('--rows <N/s>', 'rows (dimension 0 of the inputs) per second (default unlimited)')
  .option('--burst <N>', 'calls allowed at once above --rate (default: the rate)')
  .option('--quota <N/day>', 'calls per UTC day (default unlimited)')
  .option('--concurrent <N>', 'calls in flight at once (default unlimited)')
  .option('--name <name>', 'a name to recognise it by in lists')
  .addOption(registryOption())
  .option('--json', 'print {"key", "id"}')
  .action(async (options) => process.exit(await createKey(options)));

keys.command('list')
  .description('list every key, revoked ones included (never a secret)')
  .addOption(registryOption())
  .option('--json', 'print JSON')
  .action(async (options) => process.exit(await listKeys(options)));

keys.command('revoke')
  .description('revoke a key at once')
  .argument('<id>', 'the key id (the 12 hex characters after nxk_)')
  .addOption(registryOption())
  .option('--json', 'print JSON')
  .action(async (id: string, options) => process.exit(await revokeKey(id, options)));

const tls = program.command('tls').description("the deployment's CA and service certificates");

tls.command('init')
  .description('create the CA and each service\'s certificate in a TLS directory, as `nexus up` does (keeps valid ones)')
  .option('--dir <dir>', 'the TLS directory (env NEXUS_TLS_DIR; default $NEXUS_HOME/tls)')
  .option('--names <a,b>', 'host names or IPs the services are dialed by, beyond localhost and 127.0.0.1 (e.g. registry,executor,router)')
  .option('--json', 'print what was created as JSON')
  .action(async (options) => process.exit(await initTls(options)));

program.command('audit')
  .description("show the registry's audit log, newest first: who made which write or admin call, and how it ended")
  .addOption(registryOption())
  .option('--limit <N>', 'how many records (1 to 1000)', '50')
  .option('--json', 'print JSON')
  .action(async (options) => process.exit(await listAudit(options)));

await program.parseAsync();
