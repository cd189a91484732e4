/**
 * nexus infer <model> --data '[[...]]': one ModelInfer call through the router, the same call any
 * Open Inference Protocol client makes. Input names and datatypes come from ModelMetadata.
 */
import { Metadata } from '@grpc/grpc-js';
import type {
  InferParameter, InferTensorContents, ModelInferRequest_InferInputTensor, ModelInferResponse, ModelMetadataResponse,
} from '../../protocol/generated/inference/grpc_service.ts';
import { inferenceClient, unaryCall } from '../remote/index.ts';
import { ExitCode, printJson, printTable, reportError } from '../terminal/index.ts';

export interface InferOptions {
  router: string;
  version?: string;
  data?: string;
  input: string[];
  /** Request parameters as key=value: priority, timeout, a sticky key such as user, ... */
  param?: string[];
  json?: boolean;
  timeoutMs: string;
  /** Ask for every output's top K classes (Triton's classification extension), printed with the version's labels. */
  classes?: string;
}

/** A nested JSON array as flat values and a shape; throws when it is ragged or not numeric. */
export function flattenNested(value: unknown, what: string): { shape: number[]; values: number[] } {
  const shape: number[] = [];
  for (let level: unknown = value; Array.isArray(level); level = level[0]) shape.push(level.length);
  const values: number[] = [];
  const walk = (node: unknown, depth: number) => {
    if (depth === shape.length) {
      if (typeof node !== 'number' && typeof node !== 'boolean') throw new Error(`${what}: ${JSON.stringify(node)} is not a number`);
      values.push(Number(node));
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) throw new Error(`${what}: rows have different lengths`);
    for (const child of node) walk(child, depth + 1);
  };
  walk(value, 0);
  return { shape, values };
}

function contentsFor(datatype: string, values: number[]): InferTensorContents {
  const contents: InferTensorContents = {
    boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [],
    fp32Contents: [], fp64Contents: [], bytesContents: [],
  };
  if (datatype === 'FP32') contents.fp32Contents = values;
  else if (datatype === 'FP64') contents.fp64Contents = values;
  else if (datatype === 'INT64') contents.int64Contents = values;
  else if (datatype.startsWith('INT')) contents.intContents = values;
  else if (datatype === 'UINT64') contents.uint64Contents = values;
  else if (datatype.startsWith('UINT')) contents.uintContents = values;
  else if (datatype === 'BOOL') contents.boolContents = values.map(Boolean);
  else throw new Error(`datatype ${datatype} cannot be given as JSON numbers`);
  return contents;
}

/** The values of a typed output, whatever its datatype. */
function valuesOf(contents: InferTensorContents | undefined): number[] {
  if (!contents) return [];
  const fields = [contents.fp32Contents, contents.fp64Contents, contents.intContents, contents.int64Contents,
    contents.uintContents, contents.uint64Contents, contents.boolContents.map(Number)];
  return fields.find((field) => field.length > 0) ?? [];
}

/**
 * --param key=value as an Open Inference Protocol parameter: integers as int64, other numbers
 * as double, true / false as bool, anything else as a string.
 */
export function parseParameters(entries: readonly string[]): Record<string, InferParameter> {
  const parameters: Record<string, InferParameter> = {};
  for (const entry of entries) {
    const at = entry.indexOf('=');
    if (at <= 0) throw new Error(`--param '${entry}' must look like key=value`);
    const key = entry.slice(0, at);
    const text = entry.slice(at + 1);
    const number = Number(text);
    if (text === 'true' || text === 'false') parameters[key] = { boolParam: text === 'true' };
    else if (text.trim() !== '' && Number.isSafeInteger(number)) parameters[key] = { int64Param: number };
    else if (text.trim() !== '' && Number.isFinite(number)) parameters[key] = { doubleParam: number };
    else parameters[key] = { stringParam: text };
  }
  return parameters;
}

export async function infer(model: string, options: InferOptions): Promise<number> {
  const client = inferenceClient(options.router);
  try {
    const metadata = await unaryCall<ModelMetadataResponse>((done) =>
      client.modelMetadata({ name: model, version: options.version ?? '' }, done));
    const given = new Map<string, string>(options.input.map((entry) => {
      const at = entry.indexOf('=');
      if (at <= 0) throw new Error(`--input '${entry}' must look like name=JSON`);
      return [entry.slice(0, at), entry.slice(at + 1)];
    }));
    if (options.data !== undefined) {
      if (metadata.inputs.length !== 1) {
        throw new Error(`${model} takes ${metadata.inputs.length} inputs (${metadata.inputs.map((input) => input.name).join(', ')}); give each with --input name=JSON`);
      }
      given.set(metadata.inputs[0].name, options.data);
    }
    const inputs: ModelInferRequest_InferInputTensor[] = [...given].map(([name, json]) => {
      const spec = metadata.inputs.find((input) => input.name === name);
      if (!spec) throw new Error(`${model} has no input '${name}'; its inputs: ${metadata.inputs.map((input) => input.name).join(', ')}`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(json);
      } catch {
        throw new Error(`input '${name}' is not valid JSON`);
      }
      const { shape, values } = flattenNested(parsed, `input '${name}'`);
      return { name, datatype: spec.datatype, shape, parameters: {}, contents: contentsFor(spec.datatype, values) };
    });
    const parameters = parseParameters(options.param ?? []);
    const classes = options.classes === undefined ? undefined : Number(options.classes);
    if (classes !== undefined && !(Number.isSafeInteger(classes) && classes >= 1)) throw new Error(`--classes '${options.classes}' must be a positive integer`);
    const requested = classes === undefined ? [] : metadata.outputs.map((output) => ({ name: output.name, parameters: { classification: { int64Param: classes } } }));
    const request = { modelName: model, modelVersion: options.version ?? '', id: '', parameters, inputs, outputs: requested, rawInputContents: [] };
    const response = await unaryCall<ModelInferResponse>((done) =>
      client.modelInfer(request, new Metadata(), { deadline: Date.now() + Number(options.timeoutMs) }, done));

    const outputs = response.outputs.map((output) => ({
      name: output.name, datatype: output.datatype, shape: output.shape, values: valuesOf(output.contents),
    }));
    if (options.json) {
      printJson({ model_name: response.modelName, model_version: response.modelVersion, outputs });
      return ExitCode.OK;
    }
    console.log(`${response.modelName} version ${response.modelVersion}`);
    for (const output of response.outputs.filter((tensor) => tensor.datatype === 'BYTES')) {
      // Classification answers, "score:index:label" each: one row per class, best first.
      const entries = (output.contents?.bytesContents ?? []).map((bytes) => new TextDecoder().decode(bytes).split(':'));
      const perRow = output.shape.length >= 2 ? Number(output.shape.at(-1)) : entries.length;
      console.log(`${output.name} top ${perRow} [${output.shape.join(', ')}]`);
      printTable(['row', 'rank', 'class', 'label', 'score'], entries.map(([score, index, ...label], at) =>
        [Math.floor(at / perRow), at % perRow + 1, index, label.join(':'), Number(Number(score).toPrecision(6))]));
    }
    for (const output of outputs.filter((tensor) => tensor.datatype !== 'BYTES')) {
      const width = output.shape.length >= 2 ? output.shape.slice(1).reduce((a, b) => a * b, 1) : output.values.length;
      const rows: number[][] = [];
      for (let start = 0; start < output.values.length; start += width) rows.push(output.values.slice(start, start + width));
      console.log(`${output.name} ${output.datatype} [${output.shape.join(', ')}]`);
      printTable(['row', ...Array.from({ length: width }, (_, index) => String(index))],
        rows.map((row, index) => [index, ...row.map((value) => Number(value.toPrecision(6)))]));
    }
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `inference on ${model} failed`);
  } finally {
    client.close();
  }
}
