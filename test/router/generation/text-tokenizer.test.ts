/**
 * A checkpoint's tokenizer from its files: encoding with and without special tokens, EOS ids
 * from every config that names them, the chat template (its own, or the plain one), and precise
 * refusals of malformed files.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/index.ts';
import { TextTokenizer } from '../../../services/router/generation/text-tokenizer.ts';
import { byteLevelTokenizer, llamaStyleTokenizer } from './tokenizer-fixtures.ts';

const CHATML = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}"
  + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

describe('TextTokenizer', () => {
  it('adds BOS as the tokenizer\'s post-processor says, unless asked not to', () => {
    const llama = TextTokenizer.fromFiles({ tokenizerJson: llamaStyleTokenizer().json });
    expect(llama.encode('Hello world')).toEqual([1, llamaStyleTokenizer().vocab['▁Hello'], llamaStyleTokenizer().vocab['▁world']]);
    expect(llama.encode('Hello world', false)[0]).not.toBe(1);
    expect(llama.decode(llama.encode('Hello world'))).toBe('Hello world');
    expect(llama.decode(llama.encode('Hello world'), false)).toBe('<s> Hello world');
  });

  it('collects EOS ids from generation_config.json, config.json and the eos token', () => {
    const { json, eosId } = byteLevelTokenizer();
    const tokenizer = TextTokenizer.fromFiles({
      tokenizerJson: json,
      tokenizerConfigJson: JSON.stringify({ eos_token: { content: '<|endoftext|>', special: true } }),
      generationConfigJson: JSON.stringify({ eos_token_id: [7, 9] }),
      configJson: JSON.stringify({ eos_token_id: 9 }),
    });
    expect([...tokenizer.eosTokenIds].sort((a, b) => a - b)).toEqual([7, 9, eosId]);
  });

  it('renders the chat template of tokenizer_config.json with the generation prompt', () => {
    const tokenizer = TextTokenizer.fromFiles({
      tokenizerJson: byteLevelTokenizer().json, tokenizerConfigJson: JSON.stringify({ chat_template: [{ name: 'default', template: CHATML }] }),
    });
    expect(tokenizer.hasChatTemplate).toBe(true);
    expect(tokenizer.renderChat([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]))
      .toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('gives the bos_token to a template that writes it, and falls back to a plain template without one', () => {
    const withBos = TextTokenizer.fromFiles({
      tokenizerJson: llamaStyleTokenizer().json,
      tokenizerConfigJson: JSON.stringify({ bos_token: '<s>', chat_template: "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }} {% endfor %}" }),
    });
    expect(withBos.renderChat([{ role: 'user', content: 'Hello' }])).toBe('<s>[user] Hello ');
    const plain = TextTokenizer.fromFiles({ tokenizerJson: byteLevelTokenizer().json });
    expect(plain.hasChatTemplate).toBe(false);
    expect(plain.renderChat([{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hi' }, { role: 'user', content: 'bye' }]))
      .toBe('user: hello\nassistant: hi\nuser: bye\nassistant:');
  });

  it('answers INVALID_ARGUMENT when the template raises, FAILED_PRECONDITION naming a malformed file', () => {
    const strict = TextTokenizer.fromFiles({
      tokenizerJson: byteLevelTokenizer().json,
      tokenizerConfigJson: JSON.stringify({ chat_template: "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with the user') }}{% endif %}ok" }),
    });
    expect(() => strict.renderChat([{ role: 'assistant', content: 'x' }])).toThrow(expect.objectContaining({
      code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/start with the user/) }));
    expect(() => TextTokenizer.fromFiles({ tokenizerJson: '{not json' })).toThrow(expect.objectContaining({
      code: ErrorCode.FAILED_PRECONDITION, message: expect.stringMatching(/tokenizer\.json.*not JSON/) }));
    expect(() => TextTokenizer.fromFiles({ tokenizerJson: byteLevelTokenizer().json, generationConfigJson: '[1]' })).toThrow(expect.objectContaining({
      code: ErrorCode.FAILED_PRECONDITION, message: expect.stringMatching(/generation_config\.json.*not a JSON object/) }));
  });
});
