/**
 * Actions and the admin token. An action opens a confirmation dialog that also asks for the
 * token (kept for this browser tab in sessionStorage once the master accepted it, never in
 * localStorage, cookies or the URL); the master decides, the page only reports its answer.
 */
import { ApiError, postAction } from './api.js';
import type { Ctx } from './app.js';
import { h } from './dom.js';

const TOKEN_KEY = 'strata.adminToken';

export function storedToken(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function forgetToken(): void {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: nothing was kept
  }
}

function keepToken(token: string): void {
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage disabled: the operator types it again next time
  }
}

export interface ActionRequest {
  /** Dialog title, e.g. "Decommission worker 10.0.0.5:8997?" */
  title: string;
  /** What will happen, in a sentence or two. */
  detail: string;
  /** Label of the confirming button. */
  confirm: string;
  /** Label of the button that closes the dialog without acting (default "Cancel"). */
  dismiss?: string;
  path: string;
  body: unknown;
  /** Message after success. */
  done: string;
}

/** Asks for confirmation (and the token), POSTs, reports the outcome; resolves true when applied. */
export function runAction(ctx: Ctx, a: ActionRequest): Promise<boolean> {
  return new Promise((resolve) => {
    const token = h('input', {
      type: 'password',
      name: 'admin-token',
      autocomplete: 'off',
      placeholder: 'master.admin_token',
      'data-k': 'admin-token',
    });
    token.value = storedToken() ?? '';
    const error = h('p', { class: 'dialog-error', 'data-k': 'action-error', role: 'alert' });
    const ok = h('button', { type: 'submit', class: 'danger', 'data-k': 'confirm' }, a.confirm);
    const cancel = h('button', { type: 'button', 'data-k': 'cancel' }, a.dismiss ?? 'Cancel');
    const form = h(
      'form',
      { method: 'dialog' },
      h('h3', null, a.title),
      h('p', null, a.detail),
      h('label', { class: 'token-label' }, 'Admin token', token),
      error,
      h('div', { class: 'dialog-buttons' }, cancel, ok),
    );
    const dialog = h('dialog', { class: 'dialog', 'data-k': 'action-dialog' }, form);
    const close = (applied: boolean): void => {
      dialog.close();
      dialog.remove();
      ctx.setBusy(false);
      resolve(applied);
    };
    cancel.addEventListener('click', () => close(false));
    dialog.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      close(false);
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      ok.disabled = true;
      error.textContent = '';
      const t = token.value.trim();
      postAction(a.path, a.body, t === '' ? undefined : t).then(
        () => {
          if (t !== '') keepToken(t);
          close(true);
          ctx.notify('ok', a.done);
          ctx.reload();
        },
        (err: unknown) => {
          ok.disabled = false;
          if (err instanceof ApiError && (err.status === 401 || err.status === 403)) forgetToken();
          error.textContent = refusal(err);
        },
      );
    });
    document.body.appendChild(dialog);
    ctx.setBusy(true);
    dialog.showModal();
    (token.value === '' ? token : ok).focus();
  });
}

function refusal(err: unknown): string {
  if (err instanceof ApiError) {
    const why =
      err.status === 401
        ? 'Refused: admin token required'
        : err.status === 403
          ? 'Refused: not allowed'
          : err.status === 429
            ? 'Refused: too many attempts'
            : 'Failed';
    return `${why} (HTTP ${err.status}). ${err.message}`;
  }
  return `Failed: ${(err as Error).message}`;
}
