// Where a popup menu opens: next to its button and always inside the window. A menu is
// fixed-positioned, so the scrolling message list cannot clip it; it opens below its button
// when it fits above the bottom of that list (the message box starts there), else above,
// else wherever it fits best. It follows its button when anything scrolls or resizes.

const MARGIN = 8;
const GAP = 4;
let current = null; // {anchor, menu}: the menu placed last

window.addEventListener("resize", follow);
document.addEventListener("scroll", follow, true);

function follow() {
  if (current && current.menu.isConnected && !current.menu.hidden) {
    placeMenu(current.anchor, current.menu);
  }
}

/** Place ``menu`` (already shown) beside ``anchor``, inside the viewport. */
export function placeMenu(anchor, menu) {
  current = { anchor, menu };
  menu.classList.add("placed");
  menu.style.top = "0px";
  menu.style.left = "0px";
  const a = anchor.getBoundingClientRect();
  const m = menu.getBoundingClientRect();
  const width = document.documentElement.clientWidth;
  const height = document.documentElement.clientHeight;
  const list = anchor.closest(".messages, .thread-messages");
  const floor = Math.min(height - MARGIN, list ? list.getBoundingClientRect().bottom : height);
  let top = a.bottom + GAP;
  if (top + m.height > floor) {
    const above = a.top - GAP - m.height;
    top = above >= MARGIN ? above : Math.max(MARGIN, height - MARGIN - m.height);
  }
  const left = Math.max(MARGIN, Math.min(a.right - m.width, width - MARGIN - m.width));
  menu.style.top = `${top}px`;
  menu.style.left = `${left}px`;
}
