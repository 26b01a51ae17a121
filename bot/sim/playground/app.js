// The playground page: a Slack-like channel view of the emulator's workspace.
// State comes from /playground/state (refetched on each server-sent event); commands and clicks
// go to /playground/command and /playground/action, which sign them like Slack and post them to
// the bot. Everything is built with DOM calls (dom.js): no data is ever parsed as HTML.

import { clear, h } from "./dom.js";
import { closeMenus, renderBlocks } from "./blocks.js";
import { loadEmoji } from "./emoji.js";
import { renderMrkdwn, textObjectNode } from "./mrkdwn.js";
import { setupThreadComposer } from "./thread.js";

const BOT_USER = "U0BOT";
const BOT_NAME = "Starpod";
const SLACKBOT = "USLACKBOT"; // Slack's own notices (a slash command typed in a thread)
const store = window.localStorage;

const ui = {
  state: null,
  user: store.getItem("playground.user"),
  channel: store.getItem("playground.channel"),
  thread: null, // {channel, ts}
  seen: JSON.parse(store.getItem("playground.seen") || "{}"), // channel -> last seen ts
  signatures: {},
  history: [],
  historyIndex: 0,
  fetching: false,
  again: false,
};

const $ = (id) => document.getElementById(id);

// -- state ---------------------------------------------------------------------------------

async function refresh() {
  if (ui.fetching) {
    ui.again = true; // coalesce bursts of changes into one more fetch
    return;
  }
  ui.fetching = true;
  try {
    const params = new URLSearchParams();
    if (ui.user) params.set("user", ui.user);
    const response = await fetch("/playground/state?" + params.toString(), { cache: "no-store" });
    if (!response.ok) throw new Error("state: HTTP " + response.status);
    ui.state = await response.json();
    if (!ui.user || !ui.state.users.some((u) => u.id === ui.user)) ui.user = ui.state.user;
    if (!ui.channel || !ui.state.channels.some((c) => c.id === ui.channel)) {
      ui.channel = ui.state.default_channel;
    }
    render();
    document.body.dataset.version = String(ui.state.version);
  } catch (error) {
    setConnection(false, String(error));
  } finally {
    ui.fetching = false;
    if (ui.again) {
      ui.again = false;
      refresh();
    }
  }
}

function connect() {
  const source = new EventSource("/playground/events");
  source.onopen = () => setConnection(true);
  source.onmessage = () => refresh();
  source.onerror = () => setConnection(false, "reconnecting…");
}

function setConnection(ok, detail) {
  const el = $("connection");
  el.className = ok ? "connection ok" : "connection down";
  el.textContent = ok ? "live" : detail || "offline";
}

// -- context for renderers -------------------------------------------------------------------

function mrkdwnContext() {
  const users = { [BOT_USER]: "starpod" };
  for (const user of ui.state.users) users[user.id] = user.name;
  const channels = {};
  for (const channel of ui.state.channels) channels[channel.id] = channel.name;
  return {
    users,
    channels,
    groups: {},
    userOptions: ui.state.users.map((u) => ({ value: u.id, text: { text: u.name } })),
  };
}

function channelById(id) {
  return ui.state.channels.find((c) => c.id === id);
}

function userName(id) {
  if (id === BOT_USER) return BOT_NAME;
  if (id === SLACKBOT) return "Slackbot";
  const user = ui.state.users.find((u) => u.id === id);
  return user ? user.name : id;
}

// -- rendering -----------------------------------------------------------------------------

function render() {
  renderSidebar();
  renderChannel();
  renderThread();
}

function renderSidebar() {
  const current = ui.state.channels.find((c) => c.id === ui.channel);
  if (current && current.messages.length) {
    ui.seen[ui.channel] = current.messages[current.messages.length - 1].ts;
    store.setItem("playground.seen", JSON.stringify(ui.seen));
  }
  $("workspace-name").textContent = ui.state.title;
  const list = clear($("channel-list"));
  for (const channel of ui.state.channels) {
    const seen = ui.seen[channel.id] || "0";
    const unread = channel.messages.filter((m) => Number(m.ts) > Number(seen)).length;
    list.append(
      h(
        "li",
        {},
        h(
          "button",
          {
            class: "channel" + (channel.id === ui.channel ? " active" : "") + (unread ? " unread" : ""),
            type: "button",
            dataset: { channelId: channel.id },
            onclick: () => switchChannel(channel.id),
          },
          h("span", { class: "hash" }, "#"),
          h("span", { class: "channel-name" }, channel.name),
          unread ? h("span", { class: "badge" }, String(unread)) : null,
        ),
      ),
    );
  }
  const select = clear($("user-select"));
  for (const user of ui.state.users) {
    select.append(
      h(
        "option",
        { value: user.id, selected: user.id === ui.user },
        user.name + (user.role ? ` (${user.role})` : ""),
      ),
    );
  }
  const notes = clear($("demo-notes"));
  const extra = ui.state.extra || {};
  for (const note of extra.notes || []) notes.append(h("li", {}, renderMrkdwn(note, mrkdwnContext())));
  $("demo-box").hidden = !(extra.notes && extra.notes.length);
}

function switchChannel(id) {
  ui.channel = id;
  ui.thread = null;
  store.setItem("playground.channel", id);
  ui.signatures = {};
  render();
  $("composer-input").focus();
}

function visibleMessages(channelId) {
  const channel = channelById(channelId);
  const top = channel ? channel.messages : [];
  const ephemerals = ui.state.ephemerals.filter((m) => m.channel === channelId && !m.thread_ts);
  return [...top, ...ephemerals].sort((a, b) => Number(a.ts) - Number(b.ts));
}

function renderChannel() {
  const channel = channelById(ui.channel);
  $("channel-title").textContent = channel ? "# " + channel.name : "";
  $("composer-input").placeholder = channel ? `Message #${channel.name} — try ${ui.state.command} help` : "";
  const messages = visibleMessages(ui.channel);
  const signature = JSON.stringify([ui.user, messages]);
  if (ui.signatures.channel === signature) return; // nothing to redraw (keeps open menus)
  ui.signatures.channel = signature;
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const scrollTop = list.scrollTop;
  clear(list);
  if (!messages.length) {
    list.append(
      h(
        "div",
        { class: "empty" },
        "Nothing here yet. Type ",
        h("code", { class: "inline-code" }, `${ui.state.command} list`),
        " below.",
      ),
    );
  }
  let previous = null;
  for (const message of messages) {
    list.append(renderMessage(message, { inThread: false, previous }));
    previous = message;
  }
  list.scrollTop = atBottom ? list.scrollHeight : scrollTop;
}

function renderThread() {
  const pane = $("thread-pane");
  if (!ui.thread) {
    pane.hidden = true;
    ui.signatures.thread = null;
    return;
  }
  const channel = channelById(ui.thread.channel);
  const parent = channel && channel.messages.find((m) => m.ts === ui.thread.ts);
  if (!parent) {
    ui.thread = null;
    pane.hidden = true;
    return;
  }
  pane.hidden = false;
  const ephemerals = ui.state.ephemerals.filter((m) => m.thread_ts === parent.ts);
  const replies = [...parent.replies, ...ephemerals].sort((a, b) => Number(a.ts) - Number(b.ts));
  const signature = JSON.stringify([ui.user, parent, replies]);
  if (ui.signatures.thread === signature) return;
  ui.signatures.thread = signature;
  $("thread-title").textContent = "Thread in # " + channel.name;
  const body = clear($("thread-messages"));
  body.append(renderMessage(parent, { inThread: true, isParent: true }));
  body.append(
    h("div", { class: "thread-divider" }, `${parent.replies.length} ${parent.replies.length === 1 ? "reply" : "replies"}`),
  );
  for (const reply of replies) body.append(renderMessage(reply, { inThread: true }));
  body.scrollTop = body.scrollHeight;
}

function formatTime(ts) {
  const date = new Date(Number(ts) * 1000);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function renderMessage(message, { inThread, previous, isParent }) {
  const ctx = { ...mrkdwnContext(), messageTs: message.ts };
  ctx.onAction = (action) => sendAction(message, action);
  const ephemeral = Boolean(message.ephemeral_for);
  // Slack folds consecutive messages of one author within a few minutes under one header.
  const continued =
    previous &&
    !ephemeral &&
    !previous.ephemeral_for &&
    previous.user === message.user &&
    Number(message.ts) - Number(previous.ts) < 300;
  const isBot = message.user === BOT_USER;
  const content = h("div", { class: "msg-content" });
  if (message.blocks && message.blocks.length) content.append(renderBlocks(message.blocks, ctx));
  else if (message.text) content.append(h("div", { class: "msg-text" }, renderMrkdwn(message.text, ctx)));
  for (const attachment of message.attachments || []) content.append(renderAttachment(attachment, ctx));
  for (const file of message.files || []) content.append(renderFile(file));
  if (message.edits && message.edits.length) {
    // Slack puts "(edited)" right after the last text of the message.
    const texts = content.querySelectorAll(".section-text, .msg-text");
    const target = texts.length ? texts[texts.length - 1] : content;
    target.append(h("span", { class: "edited", title: `edited ${message.edits.length}×` }, "(edited)"));
  }
  const replyCount = (message.replies || []).length;
  const threadLink =
    !inThread && replyCount
      ? h(
          "button",
          {
            class: "thread-link",
            type: "button",
            dataset: { ts: message.ts },
            onclick: () => openThread(message.channel, message.ts),
          },
          h("span", { class: "thread-avatars" }, "🚀"),
          h("span", { class: "thread-count" }, `${replyCount} ${replyCount === 1 ? "reply" : "replies"}`),
          h("span", { class: "thread-last" }, "Last reply " + formatTime(message.replies[replyCount - 1].ts)),
        )
      : null;
  return h(
    "div",
    {
      class:
        "msg" + (ephemeral ? " ephemeral" : "") + (continued ? " continued" : "") + (isParent ? " thread-parent" : ""),
      dataset: { ts: message.ts, channel: message.channel, user: message.user },
    },
    h("div", { class: "avatar" + (isBot ? " bot" : "") }, continued ? "" : isBot ? "🚀" : userName(message.user).slice(0, 1).toUpperCase()),
    h(
      "div",
      { class: "msg-main" },
      continued
        ? null
        : h(
            "div",
            { class: "msg-head" },
            h("span", { class: "author" }, userName(message.user)),
            isBot ? h("span", { class: "app-badge" }, "APP") : null,
            h("span", { class: "time", title: message.ts }, formatTime(message.ts)),
          ),
      ephemeral ? h("div", { class: "ephemeral-note" }, "👁 Only visible to you") : null,
      content,
      threadLink,
    ),
  );
}

function renderAttachment(attachment, ctx) {
  const color = /^#?[0-9a-fA-F]{3,6}$/.test(attachment.color || "")
    ? (attachment.color.startsWith("#") ? "" : "#") + attachment.color
    : { good: "#2eb67d", warning: "#ecb22e", danger: "#e01e5a" }[attachment.color] || "#dddddd";
  const bar = h("div", { class: "attachment-bar" });
  bar.style.background = color; // set through the CSSOM, never parsed from markup
  const body = h("div", { class: "attachment-body" });
  if (attachment.title) body.append(h("div", { class: "attachment-title" }, attachment.title));
  if (attachment.blocks) body.append(renderBlocks(attachment.blocks, ctx));
  else if (attachment.text) body.append(h("div", {}, renderMrkdwn(attachment.text, ctx)));
  for (const field of attachment.fields || []) {
    body.append(h("div", { class: "section-field" }, h("b", {}, field.title || ""), h("div", {}, textObjectNode(field.value || "", ctx))));
  }
  return h("div", { class: "attachment" }, bar, body);
}

function renderFile(file) {
  const stored = (ui.state.files || []).find((f) => f.file_id === file.id);
  return h(
    "details",
    { class: "file", dataset: { fileId: file.id || "" } },
    h(
      "summary",
      {},
      h("span", { class: "file-icon" }, "📄"),
      h("span", { class: "file-title" }, file.title || file.name || "file"),
      h("span", { class: "file-meta" }, `${file.filetype || ""} · ${file.size || 0} bytes`),
    ),
    stored ? h("pre", { class: "code-block file-content" }, stored.content) : null,
  );
}

function openThread(channel, ts) {
  ui.thread = { channel, ts };
  ui.signatures.thread = null;
  renderThread();
  $("thread-input").focus();
}

// -- talking to the bot ----------------------------------------------------------------------

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { ok: false, error: `HTTP ${response.status}` };
  }
  if (!response.ok || !data.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

async function sendCommand(text) {
  const input = $("composer-input");
  input.disabled = true;
  setStatus("Sending " + text.split(" ").slice(0, 2).join(" ") + " …");
  try {
    await post("/playground/command", { text, user: ui.user, channel: ui.channel });
    setStatus("");
    input.value = "";
    updateHints();
  } catch (error) {
    setStatus("");
    toast(error.message);
  } finally {
    input.disabled = false;
    input.focus();
  }
}

async function sendAction(message, action) {
  closeMenus();
  if (action.confirm && !(await confirmDialog(action.confirm))) return;
  setStatus(`Clicked ${action.label || action.action_id} …`);
  try {
    await post("/playground/action", {
      message_ts: message.ts,
      action_id: action.action_id,
      block_id: action.block_id,
      value: action.value,
      selected_option: action.selected_option,
      user: ui.user,
    });
  } catch (error) {
    toast(error.message);
  } finally {
    setStatus("");
  }
}

function setStatus(text) {
  $("status-line").textContent = text;
}

function toast(text) {
  const el = h("div", { class: "toast", role: "alert" }, "⚠️ " + text);
  $("toasts").append(el);
  setTimeout(() => el.remove(), 8000);
}

/** Slack's confirm dialog: resolves true on the confirm button, false otherwise. */
function confirmDialog(confirm) {
  return new Promise((resolve) => {
    const overlay = $("confirm-overlay");
    const ctx = mrkdwnContext();
    $("confirm-title").textContent = (confirm.title && confirm.title.text) || "Are you sure?";
    clear($("confirm-text")).append(textObjectNode(confirm.text || "", ctx));
    const yes = $("confirm-yes");
    const no = $("confirm-no");
    yes.textContent = (confirm.confirm && confirm.confirm.text) || "Yes";
    no.textContent = (confirm.deny && confirm.deny.text) || "Cancel";
    yes.className = "btn " + (confirm.style === "danger" ? "btn-danger" : "btn-primary");
    overlay.hidden = false;
    const finish = (answer) => {
      overlay.hidden = true;
      yes.onclick = no.onclick = overlay.onkeydown = null;
      resolve(answer);
    };
    yes.onclick = () => finish(true);
    no.onclick = () => finish(false);
    overlay.onkeydown = (event) => {
      if (event.key === "Escape") finish(false);
    };
    no.focus();
  });
}

// -- the composer ------------------------------------------------------------------------------

function updateHints() {
  const input = $("composer-input");
  const box = clear($("hints"));
  const value = input.value;
  const command = ui.state ? ui.state.command : "/starpod";
  if (!value.startsWith("/") || !ui.state) {
    box.hidden = true;
    return;
  }
  const typed = value.startsWith(command) ? value.slice(command.length).trim() : "";
  const word = typed.split(/\s+/)[0] || "";
  const matches = command.startsWith(value.split(" ")[0])
    ? ui.state.hints.filter((hint) => hint.usage.startsWith(word))
    : [];
  box.hidden = matches.length === 0 || typed.includes(" ");
  for (const hint of matches.slice(0, 8)) {
    box.append(
      h(
        "button",
        {
          class: "hint",
          type: "button",
          onclick: () => {
            input.value = `${command} ${hint.usage.split(" ")[0]} `;
            input.focus();
            updateHints();
          },
        },
        h("span", { class: "hint-usage" }, `${command} ${hint.usage}`),
        h("span", { class: "hint-summary" }, hint.summary),
      ),
    );
  }
}

function setupComposer() {
  const input = $("composer-input");
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    ui.history.push(text);
    ui.historyIndex = ui.history.length;
    sendCommand(text);
  });
  input.addEventListener("input", updateHints);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowUp" && ui.historyIndex > 0) {
      ui.historyIndex -= 1;
      input.value = ui.history[ui.historyIndex];
      event.preventDefault();
    } else if (event.key === "ArrowDown" && ui.historyIndex < ui.history.length) {
      ui.historyIndex += 1;
      input.value = ui.history[ui.historyIndex] || "";
      event.preventDefault();
    } else if (event.key === "Escape") {
      $("hints").hidden = true;
    }
  });
}

async function setup() {
  await loadEmoji(); // before the first render: shortcodes and, when needed, fallbacks
  setupComposer();
  setupThreadComposer({
    context: () => ({ thread: ui.thread, user: ui.user }),
    post,
    fail: toast,
  });
  $("user-select").addEventListener("change", (event) => {
    ui.user = event.target.value;
    store.setItem("playground.user", ui.user);
    ui.signatures = {};
    refresh();
  });
  $("thread-close").addEventListener("click", () => {
    ui.thread = null;
    renderThread();
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".overflow")) closeMenus();
  });
  refresh();
  connect();
  // A slow safety net in case the event stream is blocked by a proxy.
  setInterval(refresh, 10000);
}

setup();
