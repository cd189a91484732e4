// Playground: an inference on a tensor model (KServe v2 JSON on /v2/models/{m}/infer), or a
// streamed generation on a text-generation model (/v2/models/{m}/generate_stream).
import { api, streamEvents } from './api.js';
import { $, announce, fill, h } from './dom.js';

let models = [];

const generatesText = (version) => Boolean(version?.signature?.inputs.some((input) => input.name === 'text_input')
  && version.signature.outputs.some((output) => output.name === 'text_output'));

/** Example inputs for a signature: one row, the Iris flower for Iris's 4 features, zeros otherwise. */
function exampleInputs(signature) {
  const inputs = (signature?.inputs ?? []).map((input) => {
    const shape = input.shape.map((dim) => (Number(dim) < 0 ? 1 : Number(dim)));
    const count = shape.reduce((product, dim) => product * dim, 1);
    const iris = count === 4 && input.datatype === 'FP32';
    const value = input.datatype === 'BOOL' ? false : input.datatype === 'BYTES' ? '' : 0;
    return { name: input.name, shape, datatype: input.datatype, data: iris ? [5.1, 3.5, 1.4, 0.2] : Array(Math.min(count, 4096)).fill(value) };
  });
  return JSON.stringify({ inputs }, null, 2);
}

function chosen() {
  return models.find((model) => model.name === $('#pg-model').value);
}

function showMode() {
  const model = chosen();
  const text = generatesText(model?.latest);
  $('#pg-text').hidden = !text;
  $('#pg-tensor').hidden = text;
  $('#pg-run').textContent = text ? 'Generate' : 'Run inference';
  if (!text && model) $('#pg-inputs').value = exampleInputs(model.latest.signature);
}

export function setPlaygroundModels(list) {
  models = list;
  const select = $('#pg-model');
  const previous = select.value;
  fill(select, list.map((model) => h('option', { value: model.name }, model.name)));
  if (list.some((model) => model.name === previous)) select.value = previous;
  showMode();
}

async function run(event) {
  event.preventDefault();
  const model = chosen();
  if (!model) return;
  const version = $('#pg-version').value.trim();
  const base = `/v2/models/${encodeURIComponent(model.name)}${version ? `/versions/${encodeURIComponent(version)}` : ''}`;
  const output = $('#pg-output');
  output.textContent = '';
  try {
    if (generatesText(model.latest)) {
      const parameters = { max_tokens: Number($('#pg-max-tokens').value), temperature: Number($('#pg-temperature').value), exclude_input_in_output: true };
      output.dataset.state = 'streaming';
      await streamEvents(`${base}/generate_stream`, { text_input: $('#pg-prompt').value, parameters }, (chunk) => {
        if (chunk.error) throw new Error(chunk.error);
        output.textContent += chunk.text_output;
      });
      output.dataset.state = 'done';
      announce('Generation finished');
      return;
    }
    let body;
    try {
      body = JSON.parse($('#pg-inputs').value);
    } catch (error) {
      throw new Error(`the inputs are not JSON: ${error.message}`);
    }
    const answer = await api(`${base}/infer`, { method: 'POST', body });
    output.textContent = JSON.stringify(answer, null, 2);
    output.dataset.state = 'done';
    announce(`Inference ran on ${answer.model_name} v${answer.model_version}`);
  } catch (error) {
    output.dataset.state = 'error';
    output.textContent = error.message;
    announce(`The request failed: ${error.message}`, true);
  }
}

export function initPlayground() {
  $('#pg-model').addEventListener('change', showMode);
  $('#playground-form').addEventListener('submit', run);
}
