/**
 * A registry, a fake text-generation executor and a router on free ports, with a checkpoint
 * directory stored through `nexus store` (config.json, safetensors weights, the byte-level
 * tokenizer of tokenizer-fixtures.ts, its config with a ChatML template, generation_config.json),
 * and real gRPC clients for nexus.llm.v1.Generation and the Open Inference Protocol.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { GRPCInferenceServiceClient } from '../../../services/protocol/generated/inference/grpc_service.ts';
import { GenerateRequest, GenerationClient, type GenerateResponse } from '../../../services/protocol/generated/nexus/llm/v1/llm.ts';
import { startRegistry, type RunningRegistry } from '../../../services/registry/index.ts';
import { startRouter, type RouterConfig, type RunningRouter } from '../../../services/router/index.ts';
import { TextTokenizer } from '../../../services/router/generation/text-tokenizer.ts';
import { startFakeExecutor, type FakeExecutor, type FakeExecutorOptions } from './fake-executor.ts';
import { byteLevelTokenizer } from './tokenizer-fixtures.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../../..');

export const CHATML_TEMPLATE = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}"
  + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** A safetensors file of one F32 tensor of two values. */
function safetensors(): Buffer {
  const header = Buffer.from(JSON.stringify({ 'wte.weight': { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.byteLength));
  return Buffer.concat([length, header, Buffer.from(new Float32Array([0.5, -0.5]).buffer)]);
}

/** The checkpoint's files: what `nexus store` uploads. */
export function checkpointFiles(configJson: object = { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }): Record<string, string | Buffer> {
  const { json, eosId } = byteLevelTokenizer();
  return {
    'config.json': JSON.stringify({ ...configJson, eos_token_id: eosId }),
    'model.safetensors': safetensors(),
    'tokenizer.json': json,
    'tokenizer_config.json': JSON.stringify({ eos_token: '<|endoftext|>', chat_template: CHATML_TEMPLATE }),
    'generation_config.json': JSON.stringify({ eos_token_id: eosId }),
  };
}

export interface GenerationCluster {
  registry: RunningRegistry;
  router: RunningRouter;
  executor: FakeExecutor;
  generation: GenerationClient;
  inference: GRPCInferenceServiceClient;
  /** The tokenizer the stored checkpoint has. */
  tokenizer: TextTokenizer;
  eosId: number;
  dataDir: string;
  /** Runs the nexus CLI against this cluster. */
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Stores the checkpoint directory as a new version of `name` with `nexus store`. */
  storeCheckpoint(name: string, files?: Record<string, string | Buffer>): Promise<void>;
  /** One Generate call (with `token` as its bearer): every response, and the status it ended with (undefined: OK). */
  generate(request: Partial<GenerateRequest>, deadlineMs?: number, token?: string): Promise<{ responses: GenerateResponse[]; error?: ServiceError }>;
  stop(): Promise<void>;
}

/**
 * `authenticated`: the router checks API keys the registry issues (registry.keys.create); default
 * off. `batchTimeoutMs`: the router's --batch-timeout-ms, also how long a sequence may go silent.
 */
export async function startGenerationCluster(options: {
  executor: FakeExecutorOptions; config?: RouterConfig; authenticated?: boolean; batchTimeoutMs?: number;
}): Promise<GenerationCluster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'nexus-generation-'));
  const registry = await startRegistry({ dataDir: join(dataDir, 'registry'), keyPollIntervalMs: 100 });
  const executor = await startFakeExecutor(options.executor);
  const router = await startRouter({
    address: '127.0.0.1:0', insecure: !options.authenticated, registryAddress: registry.address, executorAddresses: [executor.address], config: options.config,
    batchTimeoutMs: options.batchTimeoutMs,
  });
  const generation = new GenerationClient(router.address, credentials.createInsecure());
  const inference = new GRPCInferenceServiceClient(router.address, credentials.createInsecure());
  const { json, eosId } = byteLevelTokenizer();
  const cli: GenerationCluster['cli'] = async (args) => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), ...args], {
        cwd: dataDir, env: { ...process.env, NEXUS_HOME: dataDir, NEXUS_REGISTRY: registry.address, NEXUS_ROUTER: router.address },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };
  return {
    registry, router, executor, generation, inference, dataDir, eosId, cli,
    tokenizer: TextTokenizer.fromFiles({ tokenizerJson: json }),
    async storeCheckpoint(name, files = checkpointFiles()) {
      const dir = join(dataDir, `${name}-checkpoint`);
      await mkdir(dir, { recursive: true });
      for (const [path, bytes] of Object.entries(files)) await writeFile(join(dir, path), bytes);
      const stored = await cli(['store', dir, name]);
      if (stored.code !== 0) throw new Error(`nexus store exited ${stored.code}: ${stored.stderr}`);
    },
    generate(request, deadlineMs = 30_000, token) {
      const metadata = new Metadata();
      if (token) metadata.set('authorization', `Bearer ${token}`);
      return new Promise((done) => {
        const responses: GenerateResponse[] = [];
        const call = generation.generate(GenerateRequest.fromPartial(request), metadata, { deadline: Date.now() + deadlineMs });
        call.on('data', (response: GenerateResponse) => responses.push(response));
        call.on('error', (error: ServiceError) => done({ responses, error }));
        call.on('end', () => done({ responses }));
      });
    },
    async stop() {
      generation.close();
      inference.close();
      await router.shutdown(500);
      await executor.stop();
      await registry.shutdown(500);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
