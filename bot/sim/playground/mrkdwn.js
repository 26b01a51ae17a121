// Slack mrkdwn → DOM nodes: *bold*, _italic_, ~strike~, `code`, ```code blocks```, > quotes,
// <url|links>, <@U…> users, <#C…> channels, <!subteam^S…> groups, <!here>, :emoji:.
// Text arrives with &, < and > escaped as entities, as Slack stores it; entities are decoded
// only into text nodes, never into markup.

import { h } from "./dom.js";
import { shortcodeEmoji } from "./emoji.js";

/** Decode the three entities Slack escapes (and &quot;/&#39; that some clients send). */
export function decodeEntities(text) {
  return text
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&");
}

/** Plain text with :emoji: shortcodes replaced (plain_text objects with emoji: true). */
export function emojify(text) {
  return text.replace(/:([a-z0-9_+-]+):/g, (whole, name) => shortcodeEmoji(name) || whole);
}

/** A plain_text object as a text node. */
export function plainNode(textObject) {
  const text = typeof textObject === "string" ? textObject : (textObject && textObject.text) || "";
  const decoded = decodeEntities(text);
  return document.createTextNode(textObject && textObject.emoji === false ? decoded : emojify(decoded));
}

/** A mrkdwn or plain_text object (or a raw string, taken as mrkdwn) as a DOM fragment. */
export function textObjectNode(textObject, ctx) {
  if (textObject && textObject.type === "plain_text") return plainNode(textObject);
  const text = typeof textObject === "string" ? textObject : (textObject && textObject.text) || "";
  return renderMrkdwn(text, ctx);
}

/** Render mrkdwn text. ctx: {users: {id: name}, channels: {id: name}, groups: {id: handle}}. */
export function renderMrkdwn(text, ctx) {
  const fragment = document.createDocumentFragment();
  const fence = /```([\s\S]*?)```/g;
  let last = 0;
  let match;
  while ((match = fence.exec(text)) !== null) {
    if (match.index > last) fragment.append(renderLines(text.slice(last, match.index), ctx));
    const code = match[1].replace(/^\n/, "").replace(/\n$/, "");
    fragment.append(h("pre", { class: "code-block" }, decodeEntities(code)));
    last = fence.lastIndex;
  }
  if (last < text.length) fragment.append(renderLines(text.slice(last), ctx));
  return fragment;
}

function renderLines(text, ctx) {
  const fragment = document.createDocumentFragment();
  // A code block swallows its newlines; the text around it keeps them, minus the one that
  // separates it from the block (Slack shows the block on its own lines anyway).
  const lines = text.replace(/^\n/, "").replace(/\n$/, "").split("\n");
  let quote = null;
  lines.forEach((line, index) => {
    const quoted = /^(&gt;|>) ?/.exec(line);
    if (quoted) {
      if (!quote) {
        quote = h("blockquote", { class: "quote" });
        fragment.append(quote);
      } else quote.append(h("br"));
      quote.append(renderInline(line.slice(quoted[0].length), ctx));
      return;
    }
    quote = null;
    if (index > 0 && !(lines[index - 1] !== undefined && /^(&gt;|>) ?/.test(lines[index - 1]))) {
      fragment.append(h("br"));
    }
    fragment.append(renderInline(line, ctx));
  });
  return fragment;
}

const INLINE = [
  { kind: "code", re: /`([^`\n]+)`/y },
  { kind: "special", re: /<([^<>\n]+)>/y },
  { kind: "b", re: /\*(?=\S)([^*\n]*?\S)\*/y },
  { kind: "i", re: /_(?=\S)([^_\n]*?\S)_/y },
  { kind: "s", re: /~(?=\S)([^~\n]*?\S)~/y },
];
const OPENERS = "`<*_~";

/** Inline formatting of one line. */
export function renderInline(line, ctx) {
  const fragment = document.createDocumentFragment();
  let plainStart = 0;
  let i = 0;
  while (i < line.length) {
    const ch = line[i];
    if (OPENERS.includes(ch)) {
      const found = matchAt(line, i);
      if (found) {
        if (i > plainStart) fragment.append(textNode(line.slice(plainStart, i)));
        fragment.append(inlineNode(found, ctx));
        i = found.end;
        plainStart = i;
        continue;
      }
    }
    i += 1;
  }
  if (plainStart < line.length) fragment.append(textNode(line.slice(plainStart)));
  return fragment;
}

function matchAt(line, i) {
  for (const { kind, re } of INLINE) {
    re.lastIndex = i;
    const m = re.exec(line);
    if (!m) continue;
    const end = i + m[0].length;
    if (kind === "b" || kind === "i" || kind === "s") {
      // Slack formats *x* only at word boundaries: "a*b*c" stays as typed.
      const before = i === 0 ? " " : line[i - 1];
      const after = end >= line.length ? " " : line[end];
      if (/[A-Za-z0-9]/.test(before) || /[A-Za-z0-9]/.test(after)) continue;
    }
    return { kind, inner: m[1], end };
  }
  return null;
}

function inlineNode(found, ctx) {
  switch (found.kind) {
    case "code":
      return h("code", { class: "inline-code" }, decodeEntities(found.inner));
    case "special":
      return specialNode(found.inner, ctx);
    case "b":
      return h("b", {}, renderInline(found.inner, ctx));
    case "i":
      return h("i", {}, renderInline(found.inner, ctx));
    default:
      return h("s", {}, renderInline(found.inner, ctx));
  }
}

function textNode(text) {
  return document.createTextNode(emojify(decodeEntities(text)));
}

/** <@U…|name>, <#C…|name>, <!subteam^S…|@h>, <!here>, <!date^…|fallback>, <url|label>. */
function specialNode(inner, ctx) {
  const [target, ...rest] = inner.split("|");
  const label = rest.length ? decodeEntities(rest.join("|")) : null;
  const users = (ctx && ctx.users) || {};
  const channels = (ctx && ctx.channels) || {};
  const groups = (ctx && ctx.groups) || {};
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return h("span", { class: "mention", title: id }, "@" + (users[id] || label || id));
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    return h("span", { class: "mention channel-mention" }, "#" + (channels[id] || label || id));
  }
  if (target.startsWith("!subteam^")) {
    const id = target.slice("!subteam^".length);
    const handle = label || groups[id] || "@" + id;
    return h("span", { class: "mention group-mention", title: id }, handle.startsWith("@") ? handle : "@" + handle);
  }
  if (target.startsWith("!date^")) {
    return document.createTextNode(label || target);
  }
  if (target.startsWith("!")) {
    const word = target.slice(1);
    return h("span", { class: "mention broadcast" }, "@" + (label ? label.replace(/^@/, "") : word));
  }
  const url = decodeEntities(target);
  if (/^(https?:\/\/|mailto:)/i.test(url)) {
    const a = h("a", { class: "link", target: "_blank", rel: "noopener noreferrer" }, label || url);
    a.href = url;
    return a;
  }
  // Not a link Slack would make: show what was written.
  return document.createTextNode("<" + decodeEntities(inner) + ">");
}
