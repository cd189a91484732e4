/**
 * nexus generate <model> "<prompt>": one generation through the router's nexus.llm.v1 Generate,
 * printing the text as its tokens arrive, then a one-line summary on stderr: tokens, time to
 * first token, tokens per second after it, and why it stopped.
 */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  FinishReason, finishReasonToJSON, GenerateRequest, GenerationClient, type GenerateResponse,
} from '../../protocol/generated/nexus/llm/v1/llm.ts';
import { callInterceptors, routerChannelCredentials } from '../remote/credentials.ts';
import { ExitCode, reportError } from '../terminal/index.ts';

/** The sampling and length flags `nexus generate` and `nexus chat` share. */
export interface SamplingFlags {
  router: string;
  version?: string;
  maxTokens?: string;
  temperature?: string;
  topP?: string;
  topK?: string;
  seed?: string;
  stop: string[];
  timeoutMs: string;
}

/** A flag's number, or undefined when not given; throws naming the flag when it is not one. */
function numberFlag(flag: string, text: string | undefined, integer = false): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (integer && (!Number.isSafeInteger(value) || value < 0))) {
    throw new Error(`${flag} must be ${integer ? 'a whole number' : 'a number'}, got '${text}'`);
  }
  return value;
}

/** The request the flags describe, for a prompt given as text or as chat messages. Pure; throws for a bad flag. */
export function generateRequestOf(model: string, prompt: Pick<GenerateRequest, 'text' | 'chat'>, flags: SamplingFlags): GenerateRequest {
  return GenerateRequest.fromPartial({
    modelName: model,
    modelVersion: flags.version ?? '',
    ...prompt,
    maxNewTokens: numberFlag('--max-tokens', flags.maxTokens, true) ?? 0,
    sampling: {
      temperature: numberFlag('--temperature', flags.temperature),
      topP: numberFlag('--top-p', flags.topP),
      topK: numberFlag('--top-k', flags.topK, true),
    },
    seed: numberFlag('--seed', flags.seed, true),
    stop: flags.stop,
  });
}

/** The router's Generation service, with the CLI's credentials (dialed as for nexus infer: TLS with --router-ca, else plaintext). */
export const generationClient = (address: string) => new GenerationClient(address, routerChannelCredentials(), { interceptors: callInterceptors() });

/** What a finished generation took, for the summary. */
export interface GenerationOutcome {
  final: GenerateResponse;
  text: string;
  elapsedMs: number;
}

/** Streams one generation, handing each piece of text to `write` as it arrives; rejects with the call's status. */
export function streamGeneration(client: GenerationClient, request: GenerateRequest, write: (text: string) => void, timeoutMs: number): Promise<GenerationOutcome> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let final: GenerateResponse | undefined;
    let text = '';
    const call = client.generate(request, new Metadata(), { deadline: Date.now() + timeoutMs });
    call.on('data', (response: GenerateResponse) => {
      text += response.text;
      if (response.text !== '') write(response.text);
      if (response.finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED) final = response;
    });
    call.on('error', (error: ServiceError) => reject(error));
    call.on('end', () => (final ? resolve({ final, text, elapsedMs: performance.now() - started }) : reject(new Error('the stream ended without a finish reason'))));
  });
}

/** "32 tokens in 0.41 s, first after 35 ms, 85.1 tokens/s after it (length)". Pure. */
export function summaryLine({ final, elapsedMs }: Pick<GenerationOutcome, 'final' | 'elapsedMs'>): string {
  const reason = finishReasonToJSON(final.finishReason).replace('FINISH_REASON_', '').toLowerCase();
  const rate = final.meanTokenLatencyMs > 0 ? `${(1000 / final.meanTokenLatencyMs).toFixed(1)} tokens/s after it` : 'no tokens after it';
  const stop = final.stop ? ` at ${JSON.stringify(final.stop)}` : '';
  return `${final.generatedTokens} tokens in ${(elapsedMs / 1000).toFixed(2)} s (prompt ${final.promptTokens}), `
    + `first after ${Math.round(final.timeToFirstTokenMs)} ms, ${rate} (${reason}${stop}, version ${final.modelVersion})`;
}

export async function generate(model: string, prompt: string, flags: SamplingFlags): Promise<number> {
  let request: GenerateRequest;
  try {
    request = generateRequestOf(model, { text: prompt }, flags);
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const client = generationClient(flags.router);
  try {
    const outcome = await streamGeneration(client, request, (text) => process.stdout.write(text), Number(flags.timeoutMs));
    process.stdout.write('\n');
    console.error(summaryLine(outcome));
    return ExitCode.OK;
  } catch (error) {
    process.stdout.write('\n');
    return reportError(error, `generation on ${model} failed`);
  } finally {
    client.close();
  }
}
