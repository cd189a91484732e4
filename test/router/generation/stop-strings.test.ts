/**
 * Stop strings on the text as it grows: text that may begin a stop string is held until the next
 * text decides, a stop string split over tokens and over executor events still stops, and the
 * stop string itself never reaches the client.
 */
import { describe, expect, it } from 'vitest';
import type { GeneratedToken } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { SequenceOutput } from '../../../services/router/generation/sequence-output.ts';
import { StopStringMatcher } from '../../../services/router/generation/stop-strings.ts';
import { TextTokenizer } from '../../../services/router/generation/text-tokenizer.ts';
import { byteLevelTokenizer } from './tokenizer-fixtures.ts';

describe('StopStringMatcher', () => {
  it('holds a possible start of a stop string and releases it once it turns out not to be one', () => {
    const matcher = new StopStringMatcher(['STOP']);
    expect(matcher.push('go S')).toEqual({ text: 'go ' });
    expect(matcher.push('T')).toEqual({ text: '' });
    expect(matcher.push('ay')).toEqual({ text: 'STay' });
    expect(matcher.flush()).toBe('');
  });

  it('stops on a stop string spread over pieces, returning the text before it and not the stop string', () => {
    const matcher = new StopStringMatcher(['\n\nUser:']);
    const steps = ['Sure.', '\n', '\n', 'User', ':', ' more'].map((piece) => matcher.push(piece));
    expect(steps.map((step) => step.text).join('')).toBe('Sure.');
    expect(steps[4]).toEqual({ text: '', stop: '\n\nUser:' });
    expect(steps[5]).toEqual({ text: '' });
  });

  it('keeps text before a stop string in the same piece and drops what follows it', () => {
    const matcher = new StopStringMatcher(['END', 'stop']);
    expect(matcher.push('one two stop three END')).toEqual({ text: 'one two ', stop: 'stop' });
  });

  it('holds the longest end that could begin any of the stop strings', () => {
    const matcher = new StopStringMatcher(['abc', 'bcd']);
    expect(matcher.push('xab')).toEqual({ text: 'x' });
    expect(matcher.push('c')).toEqual({ text: '', stop: 'abc' });
  });

  it('releases held text at the end when generation stops for another reason', () => {
    const matcher = new StopStringMatcher(['###']);
    expect(matcher.push('done ##')).toEqual({ text: 'done ' });
    expect(matcher.flush()).toBe('##');
  });

  it('passes text straight through without stop strings', () => {
    expect(new StopStringMatcher([]).push('anything ')).toEqual({ text: 'anything ' });
  });
});

describe('SequenceOutput: tokens through the detokenizer and the stop strings', () => {
  const { json } = byteLevelTokenizer();
  const tokenizer = TextTokenizer.fromFiles({ tokenizerJson: json });
  const tokens = (text: string): GeneratedToken[] => tokenizer.encode(text).map((tokenId) => ({ tokenId, logprob: -0.5, topLogprobs: [] }));

  it('stops on a stop string whose characters come one token each, across events, and cuts the tokens after it', () => {
    const output = new SequenceOutput(tokenizer, tokenizer.encode('Q'), ['STOP']);
    const events = [tokens(' go S'), tokens('T'), tokens('OP and more')];
    const steps = events.map((event) => output.accept(event));
    expect(steps.map((step) => step.text)).toEqual([' go ', '', '']);
    expect(steps[2].stop).toBe('STOP');
    // The stop completes with 'P'; ' and more' is not output.
    expect(steps[2].tokens.map((token) => token.text)).toEqual(['O', 'P']);
    expect(output.stopped).toBe(true);
    expect(output.accept(tokens(' later')).tokens).toEqual([]);
    expect(output.finish()).toEqual({ text: '' });
  });

  it('never splits a stop string made of multi-byte characters, and releases held text at the end', () => {
    const output = new SequenceOutput(tokenizer, tokenizer.encode('Q'), ['😀😀']);
    const first = output.accept(tokens(' smile 😀'));
    expect(first.text).toBe(' smile ');
    expect(first.stop).toBeUndefined();
    expect(output.finish()).toEqual({ text: '😀' });
  });

  it('counts the tokens it output and gives each token its own text and log-probability', () => {
    const output = new SequenceOutput(tokenizer, [], []);
    const step = output.accept(tokens(' the'));
    expect(step.tokens).toEqual([{ id: tokenizer.encode(' the')[0], text: ' the', logprob: -0.5, topLogprobs: [] }]);
    expect(output.generated).toBe(1);
  });
});
