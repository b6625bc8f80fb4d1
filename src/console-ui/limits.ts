/**
 * Page sizes of the console's lists, shared with the tests (no DOM here, so Node can import it):
 * a page never holds more rows than these, whatever the size of the list.
 */

/** Mounts per page (Mounts). */
export const MOUNTS_PAGE = 100;
/** Load jobs per page (Jobs). */
export const JOBS_PAGE = 50;
