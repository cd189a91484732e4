// Models: each model's versions with their git lineage, its aliases with their history (promote
// for write keys, rollback for admin keys), and the A/B experiments its split aliases run.
import { api } from './api.js';
import { $, announce, bytes, figure, fill, h, when } from './dom.js';

const shortSha = (sha) => (sha ? sha.slice(0, 10) : '—');

function lineageCells(lineage) {
  if (!lineage) return [h('td', {}, 'no commit'), h('td', {}, '—'), h('td', {}, '—')];
  return [
    h('td', {}, h('code', { title: lineage.commit }, shortSha(lineage.commit))),
    h('td', {}, lineage.branch || 'detached'),
    h('td', {}, lineage.dirty ? `dirty (${lineage.changedFiles.length} changed)` : 'clean'),
  ];
}

/** The list of models; `open` shows one. */
export async function renderModels(session, open) {
  const { models } = await api('/api/dashboard/models');
  const body = $('#models-table tbody');
  fill(body, models.length === 0
    ? h('tr', {}, h('td', { colspan: 6 }, 'No models yet: nexus store MODEL.onnx NAME'))
    : models.map((model) => h('tr', {},
      h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', onclick: () => open(model.name), 'aria-label': `Show model ${model.name}` }, model.name)),
      h('td', {}, `v${model.latest.version}`),
      ...lineageCells(model.latest.lineage),
      h('td', {}, model.serving ? `v${model.serving.version}${model.serving.loaded ? '' : ' (loading)'}` : 'not yet'))));
  return models;
}

const targetText = (alias) => (alias.split && alias.split.length > 1
  ? alias.split.map((arm) => `v${arm.version}=${arm.weight}`).join(', ') + (alias.stickyParameter ? ` (sticky by ${alias.stickyParameter})` : '')
  : `v${alias.version}`);

const moveTarget = (version, split) => (split && split.length > 1 ? split.map((arm) => `v${arm.version}=${arm.weight}`).join(', ') : version ? `v${version}` : 'unset');

function versionsTable(detail) {
  return h('table', { class: 'data', id: 'versions-table' },
    h('caption', {}, `Versions of ${detail.name}`),
    h('thead', {}, h('tr', {}, ...['Version', 'Stored', 'Commit', 'Branch', 'Working tree', 'Message', 'Aliases', 'Size'].map((title) => h('th', { scope: 'col' }, title)))),
    h('tbody', {}, detail.versions.map((version) => h('tr', { 'data-version': version.version },
      h('th', { scope: 'row' }, `v${version.version}`),
      h('td', {}, when(version.createdAtUnixMs), h('br'), h('small', {}, version.creator || '')),
      ...lineageCells(version.lineage),
      h('td', {}, version.lineage?.message?.split('\n')[0] ?? '',
        version.lineage?.dirty && version.lineage.changedFiles.length > 0
          ? h('details', {}, h('summary', {}, 'Changed files'), h('ul', {}, version.lineage.changedFiles.map((file) => h('li', {}, h('code', {}, file)))))
          : null),
      h('td', {}, version.aliases.join(', ') || '—'),
      h('td', {}, bytes(version.sizeBytes))))));
}

async function historyList(model, alias) {
  const { moves } = await api(`/api/dashboard/models/${encodeURIComponent(model)}/aliases/${encodeURIComponent(alias)}/history`);
  return h('ol', { class: 'history', 'aria-label': `History of ${alias}`, 'data-alias': alias }, moves.map((move) => h('li', { 'data-revision': move.revision },
    h('strong', {}, `r${move.revision}`), ' ',
    `${moveTarget(move.fromVersion, move.fromSplit)} → ${moveTarget(move.toVersion, move.toSplit)}`,
    move.rollback ? h('span', { class: 'badge' }, 'rollback') : null,
    ` by ${move.actor || 'unknown'}, ${when(move.movedAtUnixMs)}`, move.reason ? ` — ${move.reason}` : '')));
}

function aliasesSection(detail, session, reload) {
  const model = detail.name;
  const rows = detail.aliases.map((alias) => {
    const historyCell = h('td', {});
    const showHistory = async () => fill(historyCell, await historyList(model, alias.alias));
    const rollback = async () => {
      try {
        await api(`/api/dashboard/models/${encodeURIComponent(model)}/aliases/${encodeURIComponent(alias.alias)}/rollback`, { method: 'POST', body: {} });
        announce(`${model}@${alias.alias} rolled back`);
        await reload();
      } catch (error) {
        announce(`Rollback failed: ${error.message}`, true);
      }
    };
    const row = h('tr', { 'data-alias': alias.alias },
      h('th', { scope: 'row' }, alias.alias),
      h('td', { class: 'target' }, targetText(alias)),
      h('td', {}, `r${alias.revision}`),
      h('td', {}, `${alias.updatedBy || '—'}, ${when(alias.updatedAtUnixMs)}`),
      h('td', {},
        h('button', { type: 'button', onclick: showHistory }, 'History'),
        session.canRollback ? h('button', { type: 'button', onclick: rollback, 'aria-label': `Roll back ${alias.alias}` }, 'Roll back') : null),
      historyCell);
    void showHistory();
    return row;
  });
  const form = session.canPromote ? promoteForm(detail, reload) : h('p', { class: 'hint' }, 'Promoting needs a write key, rolling back an admin key.');
  return h('section', { 'aria-labelledby': 'aliases-title' },
    h('h3', { id: 'aliases-title' }, 'Aliases'),
    rows.length === 0 ? h('p', {}, 'No aliases yet.') : h('table', { class: 'data', id: 'aliases-table' },
      h('caption', { class: 'visually-hidden' }, `Aliases of ${model}`),
      h('thead', {}, h('tr', {}, ...['Alias', 'Target', 'Revision', 'Moved by', 'Actions', 'History'].map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', {}, rows)),
    form);
}

function promoteForm(detail, reload) {
  const model = detail.name;
  const aliasInput = h('input', { id: 'promote-alias', name: 'alias', required: true, value: detail.aliases[0]?.alias ?? 'production', pattern: '[a-z][a-z0-9_-]*', size: 14 });
  const targetInput = h('input', { id: 'promote-target', name: 'target', required: true, placeholder: '3 or 3=90,4=10', value: String(detail.versions[0]?.version ?? ''), size: 14 });
  const submit = async (event) => {
    event.preventDefault();
    try {
      const { move } = await api(`/api/dashboard/models/${encodeURIComponent(model)}/aliases/${encodeURIComponent(aliasInput.value)}/promote`, {
        method: 'POST', body: { target: targetInput.value.trim() },
      });
      announce(`${model}@${aliasInput.value} now points at ${moveTarget(move?.toVersion, move?.toSplit)}`);
      await reload();
    } catch (error) {
      announce(`Promote failed: ${error.message}`, true);
    }
  };
  return h('form', { class: 'row', id: 'promote-form', onsubmit: submit },
    h('label', { for: 'promote-alias' }, 'Alias'), aliasInput,
    h('label', { for: 'promote-target' }, 'Target'), targetInput,
    h('button', { type: 'submit' }, 'Promote'));
}

async function experimentsSection(detail) {
  const splits = detail.aliases.filter((alias) => alias.split && alias.split.length > 1);
  if (splits.length === 0) return null;
  const parts = await Promise.all(splits.map(async (alias) => {
    try {
      const report = await api(`/api/dashboard/models/${encodeURIComponent(detail.name)}/experiment?alias=${encodeURIComponent(alias.alias)}`);
      const comparisons = new Map(report.comparisons.map((comparison) => [comparison.version, comparison]));
      return h('table', { class: 'data experiment', 'data-alias': alias.alias },
        h('caption', {}, `${detail.name}@${alias.alias}${report.stickyParameter ? `, sticky by ${report.stickyParameter}` : ''}`),
        h('thead', {}, h('tr', {}, ...['Arm', 'Weight', 'Requests', 'Errors', 'Latency (ms)', 'Outcomes', 'Outcome mean', 'Outcome vs control (p)', 'Latency vs control (p)']
          .map((title) => h('th', { scope: 'col' }, title)))),
        h('tbody', {}, report.arms.map((arm, index) => {
          const comparison = comparisons.get(arm.version);
          const test = (result) => (result ? `${figure(result.pValue, 3)}${result.pValue < 0.05 ? ' significant' : ''}` : index === 0 ? 'control' : 'too few');
          return h('tr', {},
            h('th', { scope: 'row' }, `v${arm.version}`), h('td', {}, arm.weight), h('td', {}, arm.requests), h('td', {}, arm.errors),
            h('td', {}, `${figure(arm.latencyMeanMs)} ± ${figure(arm.latencyStddevMs)}`), h('td', {}, arm.outcomes), h('td', {}, figure(arm.outcomeMean, 3)),
            h('td', {}, test(comparison?.outcome)), h('td', {}, test(comparison?.latency)));
        })));
    } catch (error) {
      return h('p', {}, `${alias.alias}: ${error.message}`);
    }
  }));
  return h('section', { 'aria-labelledby': 'experiments-title' }, h('h3', { id: 'experiments-title' }, 'A/B experiments'),
    h('p', { class: 'hint' }, "Welch's t-test of each arm against the control (the first); p < 0.05 is marked significant."), parts);
}

/** One model in full. */
export async function renderModelDetail(model, session) {
  const target = $('#model-detail');
  const reload = () => renderModelDetail(model, session);
  const detail = await api(`/api/dashboard/models/${encodeURIComponent(model)}`);
  fill(target, h('section', { 'aria-labelledby': 'model-title', class: 'card', 'data-model': model },
    h('h3', { id: 'model-title', tabindex: '-1' }, `${model}`),
    h('p', {}, detail.serving ? `Serving v${detail.serving.version} by default${detail.serving.loaded ? '' : ' (loading)'}.` : 'Not served yet: the first request loads it.'),
    versionsTable(detail), aliasesSection(detail, session, reload), await experimentsSection(detail)));
}
