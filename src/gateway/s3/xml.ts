/**
 * The XML S3 speaks: a small builder for responses and a strict reader for the few request
 * documents (CompleteMultipartUpload, Delete, CreateBucketConfiguration). Request documents are
 * flat and small, so a purpose-built reader that refuses anything it does not understand is safer
 * than a general parser: a malformed body is a MalformedXML error, never a guess.
 */
import { S3Error } from './errors.js';

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;',
  );
}

/** A node of the response tree: an element with text or children. Undefined children are skipped. */
export type XmlNode = [name: string, content: string | number | boolean | XmlNode[] | undefined];

export function el(name: string, content: string | number | boolean | (XmlNode | undefined)[]): XmlNode {
  return [name, Array.isArray(content) ? content.filter((c): c is XmlNode => c !== undefined) : content];
}

/** An element only when the value is defined. */
export function opt(name: string, value: string | number | boolean | undefined): XmlNode | undefined {
  return value === undefined ? undefined : [name, value];
}

function render(node: XmlNode, out: string[]): void {
  const [name, content] = node;
  if (content === undefined) return;
  if (Array.isArray(content)) {
    out.push(`<${name}>`);
    for (const c of content) render(c, out);
    out.push(`</${name}>`);
  } else {
    out.push(`<${name}>${escapeXml(String(content))}</${name}>`);
  }
}

/** A whole document with the S3 namespace on the root element. */
export function xmlDocument(root: string, children: (XmlNode | undefined)[], xmlns = true): string {
  const out: string[] = [XML_DECLARATION, xmlns ? `<${root} xmlns="${S3_XMLNS}">` : `<${root}>`];
  for (const c of children) if (c !== undefined) render(c, out);
  out.push(`</${root}>`);
  return out.join('');
}

// ---- reading ---------------------------------------------------------------------------------

/** A parsed element: its name (namespace prefix dropped), text and child elements. */
export interface XmlElement {
  name: string;
  text: string;
  children: XmlElement[];
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    const v = ENTITIES[e];
    if (v === undefined) throw malformed(`unknown entity ${m}`);
    return v;
  });
}

function malformed(why: string): S3Error {
  return new S3Error(
    'MalformedXML',
    `The XML you provided was not well-formed or did not validate against our published schema (${why}).`,
  );
}

/** Parses a small document into elements; anything beyond elements, text, comments and the declaration is refused. */
export function parseXml(text: string): XmlElement {
  let i = 0;
  const n = text.length;
  const skipMisc = (): void => {
    for (;;) {
      while (i < n && /\s/.test(text[i] ?? '')) i++;
      if (text.startsWith('<?', i)) {
        const end = text.indexOf('?>', i);
        if (end < 0) throw malformed('unterminated declaration');
        i = end + 2;
      } else if (text.startsWith('<!--', i)) {
        const end = text.indexOf('-->', i);
        if (end < 0) throw malformed('unterminated comment');
        i = end + 3;
      } else return;
    }
  };
  const parseElement = (depth: number): XmlElement => {
    if (depth > 16) throw malformed('nesting too deep');
    if (text[i] !== '<') throw malformed(`expected an element at offset ${i}`);
    const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(
      text.slice(i, i + 4096),
    );
    if (m === null) throw malformed(`bad start tag at offset ${i}`);
    const qname = m[1] ?? '';
    const name = qname.includes(':') ? qname.slice(qname.indexOf(':') + 1) : qname;
    i += m[0].length;
    const elem: XmlElement = { name, text: '', children: [] };
    if (m[3] === '/') return elem;
    let textParts = '';
    for (;;) {
      if (i >= n) throw malformed(`unterminated element <${qname}>`);
      if (text.startsWith('</', i)) {
        const close = /^<\/([A-Za-z_][\w.:-]*)\s*>/.exec(text.slice(i, i + 512));
        if (close === null || close[1] !== qname) throw malformed(`mismatched end tag for <${qname}>`);
        i += close[0].length;
        elem.text = decodeEntities(textParts);
        return elem;
      }
      if (text.startsWith('<!--', i)) {
        const end = text.indexOf('-->', i);
        if (end < 0) throw malformed('unterminated comment');
        i = end + 3;
        continue;
      }
      if (text.startsWith('<![CDATA[', i)) {
        const end = text.indexOf(']]>', i);
        if (end < 0) throw malformed('unterminated CDATA');
        textParts += text.slice(i + 9, end).replace(/&/g, '&amp;');
        i = end + 3;
        continue;
      }
      if (text[i] === '<') {
        elem.children.push(parseElement(depth + 1));
        continue;
      }
      const next = text.indexOf('<', i);
      const end = next < 0 ? n : next;
      textParts += text.slice(i, end);
      i = end;
    }
  };
  skipMisc();
  const root = parseElement(0);
  skipMisc();
  if (i !== n) throw malformed('content after the root element');
  return root;
}

export function child(e: XmlElement, name: string): XmlElement | undefined {
  return e.children.find((c) => c.name === name);
}

export function childText(e: XmlElement, name: string): string | undefined {
  return child(e, name)?.text;
}

export function expectRoot(e: XmlElement, name: string): XmlElement {
  if (e.name !== name) throw malformed(`expected <${name}>, got <${e.name}>`);
  return e;
}

export { malformed as malformedXml };
