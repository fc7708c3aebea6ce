// S3's XML: rendering replies, and reading the two small request documents a client sends
// (CompleteMultipartUpload, Delete). The request documents are bounded in size before they get
// here and have a fixed, flat shape, so a small scanner reads them; no DTDs or entities beyond
// XML's five are honoured.
import { S3Error } from './errors.js';

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A tree of elements: a string is text, an array repeats the element, undefined leaves it out. */
export type XmlValue = string | number | boolean | undefined | XmlObject | XmlValue[];
export interface XmlObject { [name: string]: XmlValue }

function renderValue(name: string, v: XmlValue): string {
  if (v === undefined) return '';
  if (Array.isArray(v)) return v.map((x) => renderValue(name, x)).join('');
  if (typeof v === 'object') return `<${name}>${renderChildren(v)}</${name}>`;
  return `<${name}>${escapeXml(String(v))}</${name}>`;
}

function renderChildren(o: XmlObject): string {
  return Object.entries(o).map(([k, v]) => renderValue(k, v)).join('');
}

/** A whole reply document: `<root xmlns=...>children</root>`. */
export function renderXml(root: string, children: XmlObject): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${NS}">${renderChildren(children)}</${root}>`;
}

export function renderError(err: S3Error, resource: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${renderChildren({ Code: err.code, Message: err.message, ...err.extra, Resource: resource, RequestId: requestId })}</Error>`;
}

function unescapeXml(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g, (_m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

/** Every `<name>...</name>` directly inside `xml` (names in these documents never nest in themselves). */
export function elements(xml: string, name: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>`, 'g');
  for (const m of xml.matchAll(re)) out.push(m[1]!);
  return out;
}

/** The text of the one `<name>` in `xml`, unescaped; undefined when absent. */
export function text(xml: string, name: string): string | undefined {
  const [first] = elements(xml, name);
  if (first === undefined) return undefined;
  return unescapeXml(first.replace(/^<!\[CDATA\[([\s\S]*)\]\]>$/, '$1'));
}

/** Rejects what is not a well-formed document with the expected root, as S3's MalformedXML. */
export function requireRoot(xml: string, root: string): string {
  const body = xml.replace(/^\uFEFF/, '').replace(/^\s*<\?xml[^>]*\?>/, '').trim();
  if (/<!DOCTYPE|<!ENTITY/i.test(body)) throw new S3Error('MalformedXML', 'document type declarations are not accepted');
  const inner = elements(body, root)[0];
  if (inner === undefined) throw new S3Error('MalformedXML', `the body is not a <${root}> document`);
  return inner;
}
