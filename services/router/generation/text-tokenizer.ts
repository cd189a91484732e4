/**
 * A model version's tokenizer, from the files of its checkpoint directory: tokenizer.json (the
 * Hugging Face format: byte-level BPE as GPT-2's, SentencePiece-style BPE with byte fallback as
 * Llama's, WordPiece, Unigram), tokenizer_config.json (special tokens, the chat template) and
 * generation_config.json / config.json (end-of-sequence ids). Chat templates are Jinja, rendered
 * with @huggingface/jinja as transformers renders them. No I/O: the caller reads the files.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { ErrorCode, NexusError } from '../../domain/index.ts';

/** The files a tokenizer is made from, as text; only tokenizer.json is required. */
export interface TokenizerFiles {
  tokenizerJson: string;
  tokenizerConfigJson?: string;
  generationConfigJson?: string;
  configJson?: string;
}

export interface ChatTurn {
  role: string;
  content: string;
}

/**
 * The template of a checkpoint without one (GPT-2's has none): one "role: content" line per
 * message and "assistant:" to prompt the answer, so a plain language model can still be chatted
 * with.
 */
const PLAIN_CHAT_TEMPLATE = "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
  + "{% if add_generation_prompt %}assistant:{% endif %}";

type JsonObject = Record<string, unknown>;

const unusable = (file: string, reason: string) =>
  new NexusError(ErrorCode.FAILED_PRECONDITION, `the model's ${file} cannot be used: ${reason}`);

function parseObject(text: string | undefined, file: string): JsonObject | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw unusable(file, `it is not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw unusable(file, 'it is not a JSON object');
  return parsed as JsonObject;
}

/** A special token as tokenizer_config.json writes it: a string, or an AddedToken object with its content. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as JsonObject).content === 'string') return (value as JsonObject).content as string;
  return undefined;
}

/** eos_token_id as the configs write it: one id or a list. */
function idsOf(value: unknown): number[] {
  const values = Array.isArray(value) ? value : [value];
  return values.filter((id): id is number => Number.isSafeInteger(id) && (id as number) >= 0);
}

/** The chat template of tokenizer_config.json: a string, or a list of named ones ("default" wins). */
function chatTemplateOf(config: JsonObject): string | undefined {
  const template = config.chat_template;
  if (typeof template === 'string') return template;
  if (Array.isArray(template)) {
    const named = template.filter((entry): entry is { name: string; template: string } =>
      typeof entry?.name === 'string' && typeof entry?.template === 'string');
    return (named.find((entry) => entry.name === 'default') ?? named[0])?.template;
  }
  return undefined;
}

export class TextTokenizer {
  /** Ids that end a sequence "eos": from generation_config.json, config.json and the eos token. */
  readonly eosTokenIds: readonly number[];
  /** Whether the checkpoint has its own chat template (else the plain one is used). */
  readonly hasChatTemplate: boolean;
  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  private readonly specialTokens: Record<string, string>;
  private readonly vocabularySize: number;

  private constructor(tokenizer: Tokenizer, config: JsonObject, eosTokenIds: number[], templateText: string | undefined) {
    this.tokenizer = tokenizer;
    this.eosTokenIds = eosTokenIds;
    this.hasChatTemplate = templateText !== undefined;
    this.specialTokens = {};
    for (const name of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const content = tokenContent(config[name]);
      if (content !== undefined) this.specialTokens[name] = content;
    }
    this.vocabularySize = tokenizer.get_vocab(true).size;
    try {
      this.template = new Template(templateText ?? PLAIN_CHAT_TEMPLATE);
    } catch (error) {
      throw unusable('tokenizer_config.json', `its chat_template does not parse (${(error as Error).message})`);
    }
  }

  /** Throws FAILED_PRECONDITION naming the file that is malformed. */
  static fromFiles(files: TokenizerFiles): TextTokenizer {
    const tokenizerJson = parseObject(files.tokenizerJson, 'tokenizer.json')!;
    const config = parseObject(files.tokenizerConfigJson, 'tokenizer_config.json') ?? {};
    const generation = parseObject(files.generationConfigJson, 'generation_config.json') ?? {};
    const modelConfig = parseObject(files.configJson, 'config.json') ?? {};
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (error) {
      throw unusable('tokenizer.json', (error as Error).message);
    }
    const eos = new Set([...idsOf(generation.eos_token_id), ...idsOf(modelConfig.eos_token_id)]);
    const eosToken = tokenContent(config.eos_token);
    const eosFromToken = eosToken === undefined ? undefined : tokenizer.token_to_id(eosToken);
    if (eosFromToken !== undefined) eos.add(eosFromToken);
    return new TextTokenizer(tokenizer, config, [...eos], chatTemplateOf(config));
  }

  /** Tokens in the vocabulary, added tokens included: every valid id is below it. */
  get vocabSize(): number {
    return this.vocabularySize;
  }

  /** The ids of `text`, with the special tokens (BOS) the tokenizer adds unless `addSpecialTokens` is false. */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  /** The text of `ids`; special tokens (EOS, BOS) are left out unless `skipSpecialTokens` is false. */
  decode(ids: readonly number[], skipSpecialTokens = true): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }

  /** A token as the vocabulary spells it ("Ġthe", "▁Paris", "<0xE2>"); '' for an unknown id. */
  tokenString(id: number): string {
    return this.tokenizer.id_to_token(id) ?? '';
  }

  /**
   * The prompt the chat template makes of `messages`, ending with the generation prompt. The
   * template writes the special tokens it wants (BOS), so the text is encoded without adding any.
   * Throws INVALID_ARGUMENT when the template refuses the messages (raise_exception).
   */
  renderChat(messages: readonly ChatTurn[]): string {
    try {
      return this.template.render({ messages, add_generation_prompt: true, ...this.specialTokens });
    } catch (error) {
      throw new NexusError(ErrorCode.INVALID_ARGUMENT, `chat: the model's chat template refused the messages: ${(error as Error).message}`);
    }
  }
}
