// The demo's Markdown renderer for chat bubbles: paragraphs, fenced code blocks, inline code,
// bold and italic, headings, lists, block quotes, rules and http(s) links. A model's reply is
// untrusted text: every node is made with createElement / createTextNode and filled with
// textContent, never innerHTML, so HTML in a reply shows as text and nothing from it runs. Links
// are live only for absolute http(s) URLs (rel="noopener noreferrer"); images are never loaded.
// Written by hand because the page has no build step and a chat needs this small subset only.

const FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$/;
const RULE = /^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;

/** Markdown `text` as a DocumentFragment of safe DOM nodes. */
export function renderMarkdown(text, doc = document) {
  const frag = doc.createDocumentFragment();
  blocks(String(text ?? "").replace(/\r\n?/g, "\n").split("\n"), frag, doc);
  return frag;
}

function el(doc, tag, parent) {
  const e = doc.createElement(tag);
  parent?.append(e);
  return e;
}

const indentOf = (l) => l.length - l.trimStart().length;
const blank = (l) => l.trim() === "";
const startsBlock = (l) => FENCE.test(l) || HEADING.test(l) || RULE.test(l) || QUOTE.test(l) || ITEM.test(l);

function blocks(lines, parent, doc) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (blank(line)) {
      i++;
    } else if ((m = FENCE.exec(line))) {
      // Up to the closing fence, or to the end of a reply that is still streaming.
      const body = [];
      for (i++; i < lines.length && !lines[i].trimStart().startsWith(m[1]); i++) body.push(lines[i]);
      i++;
      const pre = el(doc, "pre", parent);
      // A long line scrolls sideways: the block must be reachable by keyboard to scroll it.
      pre.tabIndex = 0;
      const code = el(doc, "code", pre);
      if (m[2]) code.dataset.lang = m[2];
      code.textContent = body.join("\n");
    } else if ((m = HEADING.exec(line))) {
      // Bold lines, not <h1>…: a reply's headings must not enter the page's outline.
      const p = el(doc, "p", parent);
      p.className = `md-h md-h${m[1].length}`;
      inline(m[2], el(doc, "strong", p), doc);
      i++;
    } else if (RULE.test(line)) {
      el(doc, "hr", parent);
      i++;
    } else if (QUOTE.test(line)) {
      const body = [];
      for (; i < lines.length && (m = QUOTE.exec(lines[i])); i++) body.push(m[1]);
      blocks(body, el(doc, "blockquote", parent), doc);
    } else if (ITEM.test(line)) {
      i = list(lines, i, parent, doc);
    } else {
      // A paragraph: up to a blank line or the start of another block; line breaks kept.
      const body = [line.trim()];
      for (i++; i < lines.length && !blank(lines[i]) && !startsBlock(lines[i]); i++) body.push(lines[i].trim());
      inline(body.join("\n"), el(doc, "p", parent), doc);
    }
  }
}

/** A list starting at lines[i]; returns the index after it. Items may hold further blocks. */
function list(lines, i, parent, doc) {
  const first = ITEM.exec(lines[i]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const node = el(doc, ordered ? "ol" : "ul", parent);
  if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
  while (i < lines.length) {
    const m = ITEM.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const content = indent + m[2].length + 1;
    const body = [m[3]];
    let loose = false;
    for (i++; i < lines.length; i++) {
      const l = lines[i];
      if (blank(l)) {
        // A blank line stays in the item only when what follows is indented under it.
        let j = i;
        while (j < lines.length && blank(lines[j])) j++;
        if (j < lines.length && indentOf(lines[j]) > indent) {
          body.push(...lines.slice(i, j).map(() => ""));
          loose = true;
          i = j - 1;
          continue;
        }
        break;
      }
      const im = ITEM.exec(l);
      if (im && im[1].length <= indent) break;
      if (!im && indentOf(l) <= indent && startsBlock(l)) break;
      body.push(l.slice(Math.min(indentOf(l), content)));
    }
    const li = el(doc, "li", node);
    blocks(body, li, doc);
    // A tight item's first paragraph is its text, not a <p> of its own.
    if (!loose && li.firstChild?.nodeName === "P") li.firstChild.replaceWith(...li.firstChild.childNodes);
    // Blank lines between items of the same list.
    let j = i;
    while (j < lines.length && blank(lines[j])) j++;
    const next = j < lines.length && ITEM.exec(lines[j]);
    if (j > i && next && next[1].length === indent && /\d/.test(next[2]) === ordered) i = j;
  }
  return i;
}

// Inline spans, tried where their first character appears.
const CODE = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/y;
const BOTH = /(\*\*\*|___)(?![\s*_])([\s\S]*?[^\s\\*_])\1(?![*_])/y;
const STRONG = /(\*\*|__)(?![\s*_])([\s\S]*?[^\s\\])\1/y;
const EM = /([*_])(?![\s*_])([\s\S]*?[^\s\\*_])\1(?![*_])/y;
const LINK = /\[([^\]\n]*)\]\(\s*<?([^\s<>()]*(?:\([^\s<>()]*\)[^\s<>()]*)*)>?(?:\s+"[^"\n]*")?\s*\)/y;
const BARE = /https?:\/\/[^\s<>"'`]+/y;
const ESCAPE = /\\([!-/:-@[-`{-~])/y;

/** Inline Markdown of `s` appended to `parent`. */
function inline(s, parent, doc, inLink = false) {
  let text = "";
  const flush = () => {
    if (text) parent.append(doc.createTextNode(text));
    text = "";
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    const at = (re) => ((re.lastIndex = i), re.exec(s));
    let m;
    if (c === "\n") {
      flush();
      el(doc, "br", parent);
      i++;
    } else if (c === "\\" && (m = at(ESCAPE))) {
      text += m[1];
      i += 2;
    } else if (c === "`" && (m = at(CODE))) {
      flush();
      el(doc, "code", parent).textContent = m[2].length > 2 && m[2].startsWith(" ") && m[2].endsWith(" ") ? m[2].slice(1, -1) : m[2];
      i += m[0].length;
    } else if ((c === "*" || c === "_") && (m = at(BOTH)) && flanks(s, i, m)) {
      flush();
      inline(m[2], el(doc, "em", el(doc, "strong", parent)), doc, inLink);
      i += m[0].length;
    } else if ((c === "*" || c === "_") && (m = at(STRONG)) && flanks(s, i, m)) {
      flush();
      inline(m[2], el(doc, "strong", parent), doc, inLink);
      i += m[0].length;
    } else if ((c === "*" || c === "_") && (m = at(EM)) && flanks(s, i, m)) {
      flush();
      inline(m[2], el(doc, "em", parent), doc, inLink);
      i += m[0].length;
    } else if ((c === "[" || (c === "!" && s[i + 1] === "[")) && !inLink && ((LINK.lastIndex = i + (c === "!")), (m = LINK.exec(s)))) {
      // An image is never loaded: it becomes a link to the image, named as one.
      const image = c === "!";
      const href = httpUrl(m[2]);
      if (href) {
        flush();
        const a = link(doc, parent, href);
        if (image) a.textContent = `image: ${m[1] || href}`;
        else inline(m[1] || href, a, doc, true);
      } else {
        // Any other scheme (javascript:, data:, relative paths) stays visible as plain text.
        text += (image ? "!" : "") + m[0];
      }
      i += m[0].length + image;
    } else if (c === "h" && !inLink && (m = at(BARE)) && (i === 0 || /[\s(]/.test(s[i - 1]))) {
      // A bare URL, without the sentence's closing punctuation.
      const url = m[0].replace(/[.,;:!?)\]]+$/, "");
      const href = httpUrl(url);
      if (href) {
        flush();
        link(doc, parent, href).textContent = url;
      } else {
        text += url;
      }
      i += url.length;
    } else {
      text += c;
      i++;
    }
  }
  flush();
}

/**
 * Emphasis only between non-word characters: snake_case (as CommonMark says) and 2*3*4 (unlike
 * CommonMark: chats have more arithmetic than mid-word emphasis) stay text.
 */
function flanks(s, i, m) {
  const before = s[i - 1] ?? " ";
  const after = s[i + m[0].length] ?? " ";
  return !/\w/.test(before) && !/\w/.test(after);
}

/** A link to `href` (already checked by httpUrl) that opens apart from this page. */
function link(doc, parent, href) {
  const a = el(doc, "a", parent);
  a.href = href;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  return a;
}

/** The absolute http(s) URL `u` (normalized), or null for any other scheme or a relative one. */
function httpUrl(u) {
  try {
    const url = new URL(u);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}
