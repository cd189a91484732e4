/**
 * nexus chat <model>: an interactive conversation. Each line read is a user message; the whole
 * history goes to Generate as chat messages, so the router applies the model's chat template,
 * and the answer is printed as it arrives and kept as the assistant's turn. /reset forgets the
 * history, /exit (or end of input) leaves.
 */
import { createInterface } from 'node:readline';
import type { ChatMessage } from '../../protocol/generated/nexus/llm/v1/llm.ts';
import { ExitCode, reportError } from '../terminal/index.ts';
import { generateRequestOf, generationClient, streamGeneration, summaryLine, type SamplingFlags } from './generate.ts';

export interface ChatOptions extends SamplingFlags {
  /** A system message that starts the conversation. */
  system?: string;
}

/** The conversation so far, starting with the system message when there is one. Pure. */
export function startingHistory(system: string | undefined): ChatMessage[] {
  return system ? [{ role: 'system', content: system }] : [];
}

export async function chat(model: string, options: ChatOptions): Promise<number> {
  try {
    // Checked once, before the first line is read.
    generateRequestOf(model, { text: '' }, options);
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const client = generationClient(options.router);
  const interactive = process.stdin.isTTY === true;
  const terminal = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive, prompt: 'you> ' });
  let history = startingHistory(options.system);
  if (interactive) {
    console.error(`chatting with ${model}; /reset forgets the conversation, /exit leaves`);
    terminal.prompt();
  }
  try {
    // Lines typed while an answer streams wait their turn.
    for await (const line of terminal) {
      const message = line.trim();
      if (message === '/exit') break;
      if (message === '/reset') {
        history = startingHistory(options.system);
        console.error('(history cleared)');
      } else if (message !== '') {
        const turn = [...history, { role: 'user', content: message }];
        try {
          const outcome = await streamGeneration(client, generateRequestOf(model, { chat: { messages: turn } }, options),
            (text) => process.stdout.write(text), Number(options.timeoutMs));
          process.stdout.write('\n');
          console.error(summaryLine(outcome));
          history = [...turn, { role: 'assistant', content: outcome.text }];
        } catch (error) {
          process.stdout.write('\n');
          // At a terminal the conversation goes on without the turn that failed; a script learns of it.
          const code = reportError(error, `generation on ${model} failed`);
          if (!interactive) return code;
        }
      }
      if (interactive) terminal.prompt();
    }
    return ExitCode.OK;
  } finally {
    terminal.close();
    client.close();
  }
}
