// Executors: each one the router dials, with its device, batch slots, load and loaded models.
import { api } from './api.js';
import { $, bytes, fill, h } from './dom.js';

export async function renderExecutors() {
  const { executors } = await api('/api/dashboard/executors');
  fill($('#executors-table tbody'), executors.length === 0
    ? h('tr', {}, h('td', { colspan: 7 }, 'No executors.'))
    : executors.map((executor) => h('tr', { 'data-address': executor.address },
      h('th', { scope: 'row' }, executor.address, executor.executorId ? h('br') : null, executor.executorId ? h('small', {}, executor.executorId) : null),
      h('td', {}, executor.device || '—'),
      h('td', {}, executor.ready ? (executor.circuitOpen ? 'benched (failing batches)' : 'ready') : 'connecting'),
      h('td', {}, String(executor.slots)),
      h('td', {}, String(executor.inflightBatches), executor.runningSequences ? ` (+${executor.runningSequences} sequences)` : ''),
      h('td', {}, bytes(executor.weightBytes)),
      h('td', {}, executor.loaded.length === 0 ? 'none' : h('ul', {}, executor.loaded.map((model) =>
        h('li', {}, `${model.modelName} v${model.version}`, ` ${model.precision}`, model.task ? ` ${model.task}` : '', `, ${bytes(model.weightBytes)}`)))))));
}
