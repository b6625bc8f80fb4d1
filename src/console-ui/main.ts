/**
 * The console's shell: header with the cluster and navigation, a hash router (`#/workers`,
 * `#/browse?path=/a`), the auto-refresh loop (paused while a dialog is open or the tab is hidden,
 * never overlapping itself), and the error banner when the master does not answer.
 */
import { forgetToken, storedToken } from './admin.js';
import type { ConsoleInfo } from './api.js';
import { getJson } from './api.js';
import type { Ctx, Page } from './app.js';
import { href } from './app.js';
import { h, mount } from './dom.js';
import { formatTime } from './format.js';
import { browsePage } from './pages/browse.js';
import { configPage } from './pages/config.js';
import { jobsPage } from './pages/jobs.js';
import { metricsPage } from './pages/metrics.js';
import { mountsPage } from './pages/mounts.js';
import { overviewPage } from './pages/overview.js';
import { workersPage } from './pages/workers.js';

const PAGES: Page[] = [overviewPage, workersPage, browsePage, mountsPage, jobsPage, metricsPage, configPage];
/** How long a toast stays. */
const TOAST_MS = 6_000;

interface State {
  info: ConsoleInfo;
  page: Page;
  params: URLSearchParams;
  /** Bumped on every load; an answer for an older generation is dropped. */
  generation: number;
  busy: boolean;
  loading: boolean;
}

function route(): { page: Page; params: URLSearchParams } {
  const raw = location.hash.replace(/^#/, '');
  const [path = '', query = ''] = raw.split('?', 2);
  const id = path.replace(/^\/+/, '') || 'overview';
  return { page: PAGES.find((p) => p.id === id) ?? overviewPage, params: new URLSearchParams(query) };
}

async function start(): Promise<void> {
  const root = document.getElementById('app');
  if (root === null) return;
  let info: ConsoleInfo;
  try {
    info = await getJson<ConsoleInfo>('/api/console');
  } catch (err) {
    mount(root, h('div', { class: 'banner error' }, `Cannot reach the master: ${(err as Error).message}`));
    setTimeout(() => void start(), 5_000);
    return;
  }
  const nav = h('nav', { class: 'nav', 'aria-label': 'Pages' });
  const status = h('span', { class: 'status', 'data-k': 'status', 'aria-live': 'polite' });
  const banner = h('div', { class: 'banner error', hidden: true, role: 'alert', 'data-k': 'banner' });
  const toasts = h('div', { class: 'toasts', 'aria-live': 'polite' });
  const main = h('main', { class: 'content', 'data-k': 'content' });
  const tokenLink = h(
    'button',
    { type: 'button', class: 'link small', hidden: true, 'data-k': 'forget-token' },
    'Forget admin token',
  );
  tokenLink.addEventListener('click', () => {
    forgetToken();
    tokenLink.hidden = true;
  });
  const header = h(
    'header',
    { class: 'top' },
    h(
      'div',
      { class: 'brand' },
      h('span', { class: 'logo', 'aria-hidden': 'true' }),
      h('span', { class: 'name' }, 'Strata'),
      h('span', { class: 'cluster', 'data-k': 'header-cluster' }, info.clusterId),
      info.actionsEnabled
        ? null
        : h('span', { class: 'badge muted', title: 'Set master.admin_token to enable actions' }, 'read-only'),
    ),
    nav,
    h('div', { class: 'meta' }, status, tokenLink),
  );
  mount(root, header, banner, main, toasts);

  const st: State = { info, ...route(), generation: 0, busy: false, loading: false };

  const ctx = (): Ctx => ({
    info,
    params: st.params,
    go: (r, params) => {
      location.hash = href(r, params);
    },
    notify: (kind, text) => {
      const t = h(
        'div',
        { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-k': 'toast' },
        text,
      );
      toasts.appendChild(t);
      setTimeout(() => t.remove(), TOAST_MS);
    },
    reload: () => void load(),
    setBusy: (b) => {
      st.busy = b;
      tokenLink.hidden = storedToken() === undefined;
    },
  });

  const renderNav = (): void => {
    mount(
      nav,
      PAGES.map((p) =>
        h(
          'a',
          {
            href: href(`/${p.id}`),
            class: p === st.page ? 'active' : '',
            'aria-current': p === st.page ? 'page' : null,
          },
          p.title,
        ),
      ),
    );
  };

  const load = async (): Promise<void> => {
    const gen = ++st.generation;
    st.loading = true;
    main.setAttribute('aria-busy', 'true');
    try {
      const node = await st.page.load(ctx());
      if (gen !== st.generation) return;
      main.replaceChildren(node);
      main.dataset.page = st.page.id;
      // What is shown and how many loads ago: scripts and tests wait on these.
      main.dataset.route = location.hash;
      main.dataset.loads = String(gen);
      banner.hidden = true;
      status.textContent = `Updated ${formatTime(Date.now()).slice(11)}`;
    } catch (err) {
      if (gen !== st.generation) return;
      banner.hidden = false;
      banner.textContent = `Could not load ${st.page.title}: ${(err as Error).message}`;
      status.textContent = 'Update failed';
    } finally {
      if (gen === st.generation) {
        st.loading = false;
        main.removeAttribute('aria-busy');
      }
    }
  };

  const onRoute = (): void => {
    Object.assign(st, route());
    document.title = `${st.page.title} · ${info.clusterId} · Strata`;
    renderNav();
    void load().then(() => window.scrollTo(0, 0));
  };
  window.addEventListener('hashchange', onRoute);
  onRoute();
  tokenLink.hidden = storedToken() === undefined;

  setInterval(() => {
    if (st.page.auto && !st.busy && !st.loading && !document.hidden) void load();
  }, info.refreshMs);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && st.page.auto && !st.busy) void load();
  });
  // Charts are drawn at the page's width: redraw when it changes.
  let lastWidth = window.innerWidth;
  let resizeTimer: number | undefined;
  window.addEventListener('resize', () => {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      if (Math.abs(window.innerWidth - lastWidth) > 40 && st.page.id === 'metrics' && !st.busy) void load();
      lastWidth = window.innerWidth;
    }, 200);
  });
}

void start();
