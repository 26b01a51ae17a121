// App Home, modals and shortcuts in the playground, drawn as Slack draws them.
// State comes from /playground/views (refetched on every server-sent event); what a person does
// goes to /playground/home/open, /playground/view/{action,suggest,submit,close} and
// /playground/shortcut, which play it to the bot as Slack would (see playground_views.py).
// Kept apart from app.js: it only adds a "Home" entry, a shortcuts button, a ⋮ menu on messages
// and the modal overlay to the page app.js draws. Nothing is parsed as HTML (dom.js).

import { clear, h } from "./dom.js";
import { renderBlocks } from "./blocks.js";
import { decodeEntities, plainNode } from "./mrkdwn.js";

const views = {
  state: null,
  names: { users: {}, channels: {} },
  homeOpen: false,
  modalSignature: null,
  homeSignature: null,
  chosen: {}, // block_id -> {value, text} picked in an external select
  fetching: false,
  again: false,
};

const $ = (id) => document.getElementById(id);

function currentUser() {
  const select = $("user-select");
  return (select && select.value) || window.localStorage.getItem("playground.user") || "";
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: currentUser(), ...body }),
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

function toast(text) {
  const box = $("toasts");
  if (!box) return;
  const el = h("div", { class: "toast", role: "alert" }, "⚠️ " + text);
  box.append(el);
  setTimeout(() => el.remove(), 8000);
}

async function refresh() {
  if (views.fetching) {
    views.again = true;
    return;
  }
  views.fetching = true;
  try {
    const user = encodeURIComponent(currentUser());
    const [mine, page] = await Promise.all([
      fetch(`/playground/views?user=${user}`, { cache: "no-store" }).then((r) => r.json()),
      fetch(`/playground/state?user=${user}`, { cache: "no-store" }).then((r) => r.json()),
    ]);
    views.state = mine;
    views.names.users = Object.fromEntries(page.users.map((u) => [u.id, u.name]));
    views.names.users.U0BOT = "starpod";
    views.names.channels = Object.fromEntries(page.channels.map((c) => [c.id, c.name]));
    render();
  } catch (error) {
    // app.js shows the connection state; nothing to add here.
  } finally {
    views.fetching = false;
    if (views.again) {
      views.again = false;
      refresh();
    }
  }
}

function context(onAction) {
  return { users: views.names.users, channels: views.names.channels, groups: {}, userOptions: [], onAction };
}

// -- App Home --------------------------------------------------------------------------------

function setupHome() {
  const sidebar = document.querySelector(".sidebar");
  const firstSection = sidebar.querySelector(".sidebar-section");
  const link = h(
    "button",
    { id: "home-link", class: "channel home-link", type: "button", onclick: openHome },
    h("span", { class: "hash" }, "🏠"),
    h("span", { class: "channel-name" }, "Starpod (Home)"),
  );
  sidebar.insertBefore(h("div", { class: "home-entry" }, link), firstSection);
  const panel = h(
    "main",
    { id: "home-view", class: "home-view", hidden: true },
    h("header", { class: "channel-header" }, h("h1", {}, "🏠 Starpod — Home")),
    h("div", { id: "home-body", class: "home-body" }),
  );
  document.querySelector(".channel-view").after(panel);
  $("channel-list").addEventListener("click", closeHome);
}

async function openHome() {
  views.homeOpen = true;
  views.homeSignature = null;
  render();
  try {
    await post("/playground/home/open", {});
  } catch (error) {
    toast(error.message);
  }
}

function closeHome() {
  views.homeOpen = false;
  render();
}

function renderHome() {
  const panel = $("home-view");
  const channelView = document.querySelector(".channel-view");
  $("home-link").classList.toggle("active", views.homeOpen);
  panel.hidden = !views.homeOpen;
  channelView.hidden = views.homeOpen;
  if (!views.homeOpen) return;
  const home = views.state && views.state.home;
  const signature = JSON.stringify(home);
  if (signature === views.homeSignature) return;
  views.homeSignature = signature;
  const body = clear($("home-body"));
  if (!home) {
    body.append(h("div", { class: "empty" }, "Opening the app's Home…"));
    return;
  }
  const ctx = context((action) => viewAction("home", action));
  body.append(renderBlocks(home.blocks || [], ctx));
}

async function viewAction(surface, action) {
  try {
    await post("/playground/view/action", {
      surface,
      action_id: action.action_id,
      block_id: action.block_id,
      selected_option: action.selected_option,
    });
  } catch (error) {
    toast(error.message);
  }
}

// -- modals ----------------------------------------------------------------------------------

function setupModal() {
  document.body.append(
    h(
      "div",
      { id: "modal-overlay", class: "overlay modal-overlay", hidden: true },
      h("div", { id: "modal", class: "dialog modal", role: "dialog", "aria-modal": "true" }),
    ),
  );
}

function inputState(modal, block) {
  const element = block.element || {};
  const entered = ((modal.values || {})[block.block_id] || {})[element.action_id];
  if (entered) return entered;
  if (element.initial_option) return { selected_option: element.initial_option };
  if (element.initial_value) return { value: element.initial_value };
  return {};
}

function renderInput(modal, block) {
  const element = block.element || {};
  const state = inputState(modal, block);
  const id = "input-" + block.block_id;
  let control;
  switch (element.type) {
    case "plain_text_input": {
      const attrs = { id, class: "modal-input", dataset: { kind: "text" } };
      if (element.placeholder) attrs.placeholder = decodeEntities(element.placeholder.text || "");
      if (element.max_length) attrs.maxlength = element.max_length;
      control = h(element.multiline ? "textarea" : "input", attrs);
      control.value = state.value || "";
      break;
    }
    case "static_select": {
      control = h(
        "select",
        { id, class: "select modal-select", dataset: { kind: "select" } },
        h("option", { value: "" }, decodeEntities((element.placeholder || {}).text || "Select")),
      );
      const chosen = (state.selected_option || {}).value;
      for (const option of element.options || []) {
        control.append(
          h("option", { value: option.value, selected: option.value === chosen }, decodeEntities(option.text.text || "")),
        );
      }
      break;
    }
    case "external_select":
      control = renderExternal(block, element, state, id);
      break;
    case "radio_buttons":
    case "checkboxes": {
      const type = element.type === "radio_buttons" ? "radio" : "checkbox";
      const picked = new Set(
        type === "radio"
          ? [(state.selected_option || {}).value]
          : (state.selected_options || []).map((o) => o.value),
      );
      control = h(
        "div",
        { id, class: "modal-choices", dataset: { kind: type } },
        (element.options || []).map((option) =>
          h(
            "label",
            { class: "modal-choice" },
            h("input", { type, name: id, value: option.value, checked: picked.has(option.value) }),
            h("span", {}, plainNode(option.text)),
          ),
        ),
      );
      break;
    }
    default:
      control = h("span", { class: "element-unknown" }, `[${element.type}]`);
  }
  const error = (modal.errors || {})[block.block_id];
  return h(
    "div",
    { class: "modal-field" + (error ? " has-error" : ""), dataset: { blockId: block.block_id, blockType: "input" } },
    h("label", { class: "modal-label", for: id }, plainNode(block.label), block.optional ? h("span", { class: "optional" }, " (optional)") : null),
    control,
    block.hint ? h("div", { class: "modal-hint" }, plainNode(block.hint)) : null,
    error ? h("div", { class: "input-error", role: "alert" }, error) : null,
  );
}

function renderExternal(block, element, state, id) {
  const picked = views.chosen[block.block_id] || (state.selected_option
    ? { value: state.selected_option.value, text: state.selected_option.text.text }
    : null);
  if (picked) views.chosen[block.block_id] = picked;
  const input = h("input", {
    id,
    class: "modal-input external-input",
    dataset: { kind: "external" },
    placeholder: decodeEntities((element.placeholder || {}).text || "Type to search"),
    autocomplete: "off",
  });
  input.value = picked ? picked.text : "";
  const list = h("div", { class: "suggestions", role: "listbox", hidden: true });
  let timer = null;
  input.addEventListener("input", () => {
    delete views.chosen[block.block_id];
    clearTimeout(timer);
    const typed = input.value;
    if (typed.length < (element.min_query_length ?? 3)) {
      list.hidden = true;
      return;
    }
    timer = setTimeout(async () => {
      try {
        const answer = await post("/playground/view/suggest", { block_id: block.block_id, typed });
        clear(list);
        for (const option of answer.options) {
          list.append(
            h(
              "button",
              {
                class: "suggestion",
                type: "button",
                role: "option",
                dataset: { value: option.value },
                onclick: () => {
                  views.chosen[block.block_id] = { value: option.value, text: option.text.text };
                  input.value = option.text.text;
                  list.hidden = true;
                },
              },
              plainNode(option.text),
            ),
          );
        }
        if (!answer.options.length) list.append(h("div", { class: "suggestion-none" }, "No matches"));
        list.hidden = false;
      } catch (error) {
        toast(error.message);
      }
    }, 150);
  });
  return h("div", { class: "external" }, input, list);
}

function collectValues(modal) {
  const values = {};
  for (const block of modal.view.blocks || []) {
    if (block.type !== "input") continue;
    const field = document.querySelector(`.modal-field[data-block-id="${CSS.escape(block.block_id)}"]`);
    if (!field) continue;
    const kind = block.element.type;
    if (kind === "plain_text_input") values[block.block_id] = field.querySelector(".modal-input").value;
    else if (kind === "static_select") {
      const value = field.querySelector("select").value;
      if (value) values[block.block_id] = value;
    } else if (kind === "external_select") {
      const picked = views.chosen[block.block_id];
      if (picked) values[block.block_id] = [picked.value, picked.text];
    } else if (kind === "radio_buttons") {
      const checked = field.querySelector("input:checked");
      if (checked) values[block.block_id] = checked.value;
    } else if (kind === "checkboxes") {
      values[block.block_id] = [...field.querySelectorAll("input:checked")].map((i) => i.value);
    }
  }
  return values;
}

function renderModal() {
  const overlay = $("modal-overlay");
  const modal = views.state && views.state.modal;
  if (!modal) {
    overlay.hidden = true;
    views.modalSignature = null;
    views.chosen = {};
    return;
  }
  const signature = JSON.stringify([modal.id, modal.view, modal.errors]);
  if (signature === views.modalSignature) return;
  // Redrawn only when the view or its errors changed: what was picked is in modal.values now.
  views.chosen = {};
  views.modalSignature = signature;
  const box = clear($("modal"));
  const ctx = context((action) => viewAction("modal", action));
  const body = h("div", { class: "modal-body" });
  for (const block of modal.view.blocks || []) {
    body.append(block.type === "input" ? renderInput(modal, block) : renderBlocks([block], ctx));
  }
  const close = h(
    "button",
    {
      class: "btn modal-close",
      type: "button",
      onclick: async () => {
        try {
          await post("/playground/view/close", {});
        } catch (error) {
          toast(error.message);
        }
      },
    },
    plainNode(modal.view.close || { text: "Cancel" }),
  );
  const submit = modal.view.submit
    ? h(
        "button",
        {
          class: "btn btn-primary modal-submit",
          type: "button",
          onclick: async (event) => {
            event.target.disabled = true;
            try {
              await post("/playground/view/submit", { values: collectValues(modal) });
            } catch (error) {
              toast(error.message);
            } finally {
              event.target.disabled = false;
            }
          },
        },
        plainNode(modal.view.submit),
      )
    : null;
  box.append(
    h("h2", { class: "modal-title" }, plainNode(modal.view.title)),
    body,
    h("div", { class: "dialog-buttons" }, close, submit),
  );
  box.dataset.callbackId = modal.view.callback_id || "";
  overlay.hidden = false;
}

// -- shortcuts -------------------------------------------------------------------------------

function shortcuts(type) {
  return ((views.state && views.state.shortcuts) || []).filter((s) => s.type === type);
}

function shortcutMenu(type, extra) {
  const menu = h("div", { class: "shortcut-menu", role: "menu", hidden: true });
  for (const shortcut of shortcuts(type)) {
    menu.append(
      h(
        "button",
        {
          class: "shortcut-option",
          type: "button",
          role: "menuitem",
          dataset: { callbackId: shortcut.callback_id },
          onclick: async (event) => {
            event.stopPropagation();
            menu.hidden = true;
            try {
              await post("/playground/shortcut", { callback_id: shortcut.callback_id, ...extra() });
            } catch (error) {
              toast(error.message);
            }
          },
        },
        "⚡ " + shortcut.name,
      ),
    );
  }
  return menu;
}

function setupShortcuts() {
  // In the sidebar, under Home: global shortcuts are reachable from the Home tab too.
  const holder = h("div", { class: "shortcuts" });
  const button = h(
    "button",
    { id: "shortcuts-button", class: "shortcuts-button", type: "button", "aria-label": "Shortcuts" },
    "⚡ Shortcuts",
  );
  holder.append(button);
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    const old = holder.querySelector(".shortcut-menu");
    if (old) {
      old.remove();
      return;
    }
    const menu = shortcutMenu("global", () => ({}));
    menu.hidden = false;
    holder.append(menu);
  });
  document.querySelector(".home-entry").append(holder);
  document.addEventListener("click", () => {
    for (const menu of document.querySelectorAll(".shortcut-menu")) menu.remove();
  });
  const decorate = () => {
    if (!shortcuts("message").length) return;
    for (const message of document.querySelectorAll(".msg:not(.ephemeral)")) {
      if (message.querySelector(".msg-shortcut")) continue;
      const wrap = h("div", { class: "msg-shortcut" });
      const toggle = h("button", { class: "msg-shortcut-toggle", type: "button", "aria-label": "More message actions" }, "⋮");
      toggle.addEventListener("click", (event) => {
        event.stopPropagation();
        const old = wrap.querySelector(".shortcut-menu");
        if (old) {
          old.remove();
          return;
        }
        const menu = shortcutMenu("message", () => ({ message_ts: message.dataset.ts }));
        menu.hidden = false;
        wrap.append(menu);
      });
      wrap.append(toggle);
      message.append(wrap);
    }
  };
  new MutationObserver(decorate).observe(document.body, { childList: true, subtree: true });
  views.decorate = decorate;
}

// -- wiring ----------------------------------------------------------------------------------

function render() {
  renderHome();
  renderModal();
  if (views.decorate) views.decorate();
}

function setup() {
  setupHome();
  setupModal();
  setupShortcuts();
  $("user-select").addEventListener("change", () => {
    views.homeSignature = null;
    if (views.homeOpen) openHome();
    refresh();
  });
  const source = new EventSource("/playground/events");
  source.onmessage = () => refresh();
  refresh();
}

setup();
