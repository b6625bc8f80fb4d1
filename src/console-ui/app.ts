/** What a page gets from the shell: the console's settings, its URL parameters, and ways to talk to the operator. */
import type { ConsoleInfo } from './api.js';

export interface Ctx {
  info: ConsoleInfo;
  /** Parameters after `?` in the hash route (`#/browse?path=/a`). */
  params: URLSearchParams;
  /** Navigates to a hash route, e.g. go('/browse', { path: '/a' }). */
  go(route: string, params?: Record<string, string>): void;
  /** Shows a message in the toast area. */
  notify(kind: 'ok' | 'error', text: string): void;
  /** Reloads the current page's data now. */
  reload(): void;
  /** Refreshes pause while this is true (a dialog is open). */
  setBusy(busy: boolean): void;
}

export interface Page {
  id: string;
  title: string;
  /** Whether the page reloads its data on the refresh timer. */
  auto: boolean;
  load(ctx: Ctx): Promise<Node>;
}

/** "#/browse?path=/a" for links. */
export function href(route: string, params: Record<string, string> = {}): string {
  const q = new URLSearchParams(params).toString();
  return `#${route}${q === '' ? '' : `?${q}`}`;
}
