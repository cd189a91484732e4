// The dashboard's shell: log in with an API key (kept in sessionStorage, this tab only), then
// show one section at a time by the URL's hash.
import { api, ApiError, credentials } from './api.js';
import { $, announce } from './dom.js';
import { renderExecutors } from './executors.js';
import { renderModelDetail, renderModels } from './models.js';
import { initPlayground, setPlaygroundModels } from './playground.js';
import { startTraffic, stopTraffic } from './traffic.js';

const VIEWS = ['models', 'traffic', 'executors', 'playground'];
let session;

function showLogin(message = '') {
  session = undefined;
  stopTraffic();
  for (const view of VIEWS) $(`#view-${view}`).hidden = true;
  $('#nav').hidden = true;
  $('#who').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = message;
  $('#api-key').focus();
}

async function openModel(name) {
  try {
    await renderModelDetail(name, session);
    $('#model-title')?.focus();
  } catch (error) {
    announce(`Could not read ${name}: ${error.message}`, true);
  }
}

async function show(view) {
  if (!session) return;
  const name = VIEWS.includes(view) ? view : 'models';
  for (const other of VIEWS) {
    $(`#view-${other}`).hidden = other !== name;
    const tab = $(`#tab-${other}`);
    tab.setAttribute('aria-selected', String(other === name));
    if (other === name) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  if (name !== 'traffic') stopTraffic();
  announce('');
  try {
    if (name === 'models') {
      const models = await renderModels(session, openModel);
      if (models.length > 0 && !$('#model-detail').firstChild) await renderModelDetail(models[0].name, session);
    } else if (name === 'traffic') startTraffic();
    else if (name === 'executors') await renderExecutors();
    else if (name === 'playground') setPlaygroundModels((await api('/api/dashboard/models')).models);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showLogin(error.message);
    else announce(error.message, true);
  }
}

async function start() {
  try {
    session = await api('/api/dashboard/session');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      credentials.clear();
      showLogin(credentials.key ? error.message : '');
      return;
    }
    showLogin(error.message);
    return;
  }
  $('#login').hidden = true;
  $('#nav').hidden = false;
  $('#who').hidden = false;
  $('#principal').textContent = `${session.principal} (${session.role})`;
  await show(location.hash.slice(1));
}

$('#login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = $('#api-key').value.trim();
  credentials.set(key);
  $('#api-key').value = '';
  await start();
  if (!session) {
    credentials.clear();
    $('#login-error').textContent = 'That key was not accepted.';
  }
});
$('#logout').addEventListener('click', () => {
  credentials.clear();
  location.hash = '';
  showLogin();
});
window.addEventListener('hashchange', () => void show(location.hash.slice(1)));
initPlayground();
void start();
