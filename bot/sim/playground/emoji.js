// Emoji for every browser, including a stock Debian Chromium, which has no emoji font and
// draws each emoji as an empty box. emoji.json holds the shortcodes the page knows and, for
// every emoji the bot sends, a fallback: a glyph that DejaVu Sans has, a color and an optional
// badge background. When the browser cannot draw emoji (checked once on a canvas), a
// MutationObserver swaps each emoji in the page's text for its fallback as the page renders;
// renderers need not know. ?emoji=fallback or ?emoji=native forces either way.

import { h } from "./dom.js";

let table = { shortcodes: {}, fallbacks: {} };
let pattern = null;

/** Load the table and, when the browser cannot draw emoji, start swapping in fallbacks. */
export async function loadEmoji() {
  try {
    const response = await fetch("/static/emoji.json", { cache: "no-store" });
    if (response.ok) table = await response.json();
  } catch {
    // Without the table shortcodes stay as typed; nothing else depends on it.
  }
  const forced = new URLSearchParams(window.location.search).get("emoji");
  const fallback = forced === "fallback" || (forced !== "native" && !canDrawEmoji());
  document.documentElement.dataset.emoji = fallback ? "fallback" : "native";
  if (!fallback) return;
  const keys = Object.keys(table.fallbacks).sort((a, b) => b.length - a.length);
  if (!keys.length) return;
  pattern = new RegExp("(" + keys.map(escapeRegExp).join("|") + ")\uFE0F?", "gu");
  swapIn(document.body);
  new MutationObserver(onMutations).observe(document.body, {
    childList: true,
    subtree: true,
    characterData: true,
  });
}

/** The emoji of a shortcode (without colons), or undefined. */
export function shortcodeEmoji(name) {
  return table.shortcodes[name];
}

/** True when an emoji is drawn differently from a character no font has (the empty box). */
function canDrawEmoji() {
  const draw = (text) => {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 40;
    const context = canvas.getContext("2d");
    if (!context) return "";
    context.font = "32px sans-serif";
    context.textBaseline = "top";
    context.fillText(text, 2, 2);
    return Array.from(context.getImageData(0, 0, 40, 40).data).join(",");
  };
  const missing = draw("\uE000"); // a private-use character: the font's empty box, or nothing
  return draw("\u{1F680}") !== missing && draw("\u{1F534}") !== missing;
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function onMutations(mutations) {
  for (const mutation of mutations) {
    if (mutation.type === "characterData") swapIn(mutation.target);
    else for (const node of mutation.addedNodes) swapIn(node);
  }
}

/** Replace the emoji in every text node under ``root`` (a fallback's own text excepted). */
function swapIn(root) {
  if (!pattern || !root) return;
  if (root.nodeType === Node.TEXT_NODE) {
    swapText(root);
    return;
  }
  if (root.nodeType !== Node.ELEMENT_NODE || skipped(root)) return;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode);
  for (const text of texts) swapText(text);
}

function skipped(element) {
  return Boolean(element.closest(".emoji-fallback, script, style, textarea"));
}

function swapText(node) {
  const text = node.nodeValue || "";
  pattern.lastIndex = 0;
  if (!pattern.test(text)) return;
  const parent = node.parentElement;
  if (!parent || skipped(parent)) return;
  pattern.lastIndex = 0;
  if (parent.closest("option, title")) {
    // These hold text only: the fallback glyph alone.
    node.nodeValue = text.replace(pattern, (_, emoji) => table.fallbacks[emoji].glyph);
    return;
  }
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) fragment.append(text.slice(last, match.index));
    fragment.append(fallbackNode(match[1]));
    last = match.index + match[0].length;
  }
  if (last < text.length) fragment.append(text.slice(last));
  node.replaceWith(fragment);
}

function fallbackNode(emoji) {
  const spec = table.fallbacks[emoji];
  const badge = Boolean(spec.background);
  const node = h(
    "span",
    {
      class: "emoji-fallback" + (badge ? " badge" : ""),
      role: "img",
      "aria-label": emoji,
      title: emoji,
      dataset: { emoji },
    },
    spec.glyph,
  );
  // Colors through the CSSOM: the page's policy allows no inline style attribute.
  node.style.color = spec.color;
  if (badge) node.style.background = spec.background;
  return node;
}
