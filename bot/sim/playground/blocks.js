// Block Kit → DOM, the way Slack lays it out: header, section (text, fields, accessory),
// context, divider, actions (buttons, overflow menus, selects), image, rich_text.
// Interactive elements call ctx.onAction({action_id, block_id, value, selected_option,
// confirm, label}); the page shows the confirm dialog, then posts the click.

import { h } from "./dom.js";
import { placeMenu } from "./menus.js";
import { decodeEntities, emojify, plainNode, renderMrkdwn, textObjectNode } from "./mrkdwn.js";

/** Render a message's blocks. ctx: mrkdwn context + onAction + messageTs. */
export function renderBlocks(blocks, ctx) {
  return h("div", { class: "blocks" }, blocks.map((block) => renderBlock(block, ctx)));
}

function renderBlock(block, ctx) {
  const blockId = block.block_id || "";
  const data = { dataset: { blockId, blockType: block.type || "" } };
  switch (block.type) {
    case "header":
      return h("div", { class: "block block-header", ...data }, plainNode(block.text));
    case "divider":
      return h("hr", { class: "block block-divider", ...data });
    case "section":
      return renderSection(block, ctx, data);
    case "context":
      return h(
        "div",
        { class: "block block-context", ...data },
        (block.elements || []).map((el) =>
          el.type === "image"
            ? h("span", { class: "context-image", title: el.alt_text || "" }, "🖼")
            : h("span", { class: "context-item" }, textObjectNode(el, ctx)),
        ),
      );
    case "actions":
      return h(
        "div",
        { class: "block block-actions", ...data },
        (block.elements || []).map((el) => renderElement(el, blockId, ctx)),
      );
    case "image":
      return h(
        "div",
        { class: "block block-image", ...data },
        block.title ? h("div", { class: "image-title" }, plainNode(block.title)) : null,
        h("div", { class: "image-placeholder" }, "🖼 " + (block.alt_text || "image")),
      );
    case "rich_text":
      return h("div", { class: "block block-rich-text", ...data }, (block.elements || []).map((el) => richElement(el, ctx)));
    default:
      return h("div", { class: "block block-unknown", ...data }, `[${block.type} block]`);
  }
}

function renderSection(block, ctx, data) {
  const body = h("div", { class: "section-body" });
  if (block.text) body.append(h("div", { class: "section-text" }, textObjectNode(block.text, ctx)));
  if (block.fields && block.fields.length) {
    body.append(
      h(
        "div",
        { class: "section-fields" },
        block.fields.map((field) => h("div", { class: "section-field" }, textObjectNode(field, ctx))),
      ),
    );
  }
  const accessory = block.accessory
    ? h("div", { class: "section-accessory" }, renderElement(block.accessory, block.block_id || "", ctx))
    : null;
  return h("div", { class: "block block-section", ...data }, body, accessory);
}

/** One interactive (or image) element. */
export function renderElement(el, blockId, ctx) {
  const base = { actionId: el.action_id || "", blockId };
  switch (el.type) {
    case "button": {
      const label = el.text ? el.text.text || "" : "";
      const cls = "btn" + (el.style === "primary" ? " btn-primary" : el.style === "danger" ? " btn-danger" : "");
      return h(
        "button",
        {
          class: cls,
          type: "button",
          dataset: { ...base, value: el.value || "" },
          onclick: () => {
            if (el.url && /^https?:\/\//i.test(el.url)) window.open(el.url, "_blank", "noopener");
            ctx.onAction({
              action_id: el.action_id,
              block_id: blockId,
              value: el.value,
              confirm: el.confirm,
              label: emojify(decodeEntities(label)),
            });
          },
        },
        plainNode(el.text),
      );
    }
    case "overflow":
      return renderOverflow(el, blockId, ctx);
    case "static_select":
    case "external_select":
    case "users_select":
    case "conversations_select":
    case "channels_select":
      return renderSelect(el, blockId, ctx);
    case "image":
      return h("span", { class: "accessory-image", title: el.alt_text || "" }, "🖼");
    default:
      return h("span", { class: "element-unknown" }, `[${el.type}]`);
  }
}

function renderOverflow(el, blockId, ctx) {
  const wrapper = h("div", { class: "overflow" });
  const menu = h("div", { class: "overflow-menu", role: "menu", hidden: true });
  for (const option of el.options || []) {
    const label = option.text ? option.text.text || "" : "";
    menu.append(
      h(
        "button",
        {
          class: "overflow-option",
          type: "button",
          role: "menuitem",
          dataset: { value: option.value || "" },
          onclick: (event) => {
            event.stopPropagation();
            menu.hidden = true;
            ctx.onAction({
              action_id: el.action_id,
              block_id: blockId,
              selected_option: option.value,
              confirm: el.confirm,
              label: emojify(decodeEntities(label)),
            });
          },
        },
        plainNode(option.text),
      ),
    );
  }
  const toggle = h(
    "button",
    {
      class: "overflow-toggle",
      type: "button",
      "aria-label": "More actions",
      "aria-haspopup": "menu",
      dataset: { actionId: el.action_id || "", blockId },
      onclick: (event) => {
        event.stopPropagation();
        const wasHidden = menu.hidden;
        closeMenus();
        menu.hidden = !wasHidden;
        if (!menu.hidden) placeMenu(toggle, menu);
      },
    },
    "⋯",
  );
  wrapper.append(toggle, menu);
  return wrapper;
}

/** Close every open overflow menu (a click anywhere else does this). */
export function closeMenus() {
  for (const menu of document.querySelectorAll(".overflow-menu")) menu.hidden = true;
}

function renderSelect(el, blockId, ctx) {
  const placeholder = el.placeholder ? el.placeholder.text || "Select" : "Select an item";
  const select = h(
    "select",
    { class: "select", dataset: { actionId: el.action_id || "", blockId } },
    h("option", { value: "", disabled: true, selected: true }, decodeEntities(placeholder)),
  );
  const options = el.type === "users_select" ? ctx.userOptions || [] : el.options || [];
  for (const option of options) {
    select.append(h("option", { value: option.value }, option.text ? decodeEntities(option.text.text || "") : option.value));
  }
  select.addEventListener("change", () => {
    ctx.onAction({
      action_id: el.action_id,
      block_id: blockId,
      selected_option: select.value,
      confirm: el.confirm,
      label: select.options[select.selectedIndex].text,
    });
  });
  return select;
}

// -- rich_text -------------------------------------------------------------------------------

function richElement(el, ctx) {
  switch (el.type) {
    case "rich_text_section":
      return h("div", { class: "rich-section" }, (el.elements || []).map((item) => richInline(item, ctx)));
    case "rich_text_preformatted":
      return h("pre", { class: "code-block" }, (el.elements || []).map((item) => richInline(item, ctx)));
    case "rich_text_quote":
      return h("blockquote", { class: "quote" }, (el.elements || []).map((item) => richInline(item, ctx)));
    case "rich_text_list": {
      const tag = el.style === "ordered" ? "ol" : "ul";
      return h(tag, { class: "rich-list" }, (el.elements || []).map((item) => h("li", {}, richElement(item, ctx))));
    }
    default:
      return h("span", {}, `[${el.type}]`);
  }
}

function richInline(item, ctx) {
  let node;
  switch (item.type) {
    case "text":
      node = document.createTextNode(item.text || "");
      break;
    case "link": {
      const url = item.url || "";
      if (/^(https?:\/\/|mailto:)/i.test(url)) {
        node = h("a", { class: "link", target: "_blank", rel: "noopener noreferrer" }, item.text || url);
        node.href = url;
      } else node = document.createTextNode(item.text || url);
      break;
    }
    case "user":
      node = renderMrkdwn(`<@${item.user_id}>`, ctx);
      break;
    case "usergroup":
      node = renderMrkdwn(`<!subteam^${item.usergroup_id}>`, ctx);
      break;
    case "channel":
      node = renderMrkdwn(`<#${item.channel_id}>`, ctx);
      break;
    case "emoji":
      node = document.createTextNode(item.unicode ? String.fromCodePoint(...item.unicode.split("-").map((c) => parseInt(c, 16))) : emojify(`:${item.name}:`));
      break;
    case "broadcast":
      node = h("span", { class: "mention broadcast" }, "@" + item.range);
      break;
    default:
      node = document.createTextNode("");
  }
  const style = item.style || {};
  if (style.code) node = h("code", { class: "inline-code" }, node);
  if (style.bold) node = h("b", {}, node);
  if (style.italic) node = h("i", {}, node);
  if (style.strike) node = h("s", {}, node);
  return node;
}
