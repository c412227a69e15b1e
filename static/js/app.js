/* Small behaviours htmx does not cover. Everything is delegated from
 * `document`, or set up by htmx.onLoad on what htmx swaps in, so it keeps
 * working after htmx swaps parts of the page.
 *
 * 1. Language switcher submits on change.      5. Token buttons of the SMS editor.
 * 2. The tree marks the page that is open.     6. Flow editor: drag and drop (SortableJS).
 * 3. Tree menus close after a choice.          7. Focus stays put when htmx re-renders.
 * 4. Cancel removes an inline tree form.       8. Changes are announced to screen readers.
 * 9. A failed htmx request says so (htmx swaps nothing on 4xx/5xx), and why when refused.
 * 10. Smart list: typing a logic expression chooses "Advanced".
 */
(function () {
  "use strict";

  // --- 1. Language switcher -------------------------------------------------
  document.addEventListener("change", function (event) {
    var select = event.target.closest && event.target.closest("select[data-autosubmit]");
    if (!select) return;
    // htmx may have changed the address since the page loaded: come back to it.
    var next = select.form.querySelector("input[name=next]");
    if (next) next.value = window.location.pathname + window.location.search;
    select.form.submit();
  });

  // --- 2. The open page in the tree -----------------------------------------
  function markSelected() {
    var path = window.location.pathname;
    var best = null;
    document.querySelectorAll(".tree-link[data-node-path]").forEach(function (link) {
      link.removeAttribute("aria-current");
      var prefix = link.getAttribute("data-node-path");
      if (path.indexOf(prefix) === 0 && (!best || prefix.length > best.getAttribute("data-node-path").length)) {
        best = link;
      }
    });
    if (best) best.setAttribute("aria-current", "page");
  }
  document.addEventListener("DOMContentLoaded", markSelected);
  document.addEventListener("htmx:afterSettle", markSelected);
  document.addEventListener("htmx:pushedIntoHistory", markSelected);
  document.addEventListener("htmx:historyRestore", markSelected);
  window.addEventListener("popstate", function () { setTimeout(markSelected, 0); });

  // --- 3. Tree menus ----------------------------------------------------------
  function closeMenus(except) {
    document.querySelectorAll("details.tree-menu[open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (event) {
    var menu = event.target.closest && event.target.closest("details.tree-menu");
    if (menu && event.target.closest(".menu button")) {
      menu.removeAttribute("open");
      // One inline form at a time: clear the other slots.
      document.querySelectorAll(".tree-form").forEach(function (slot) { slot.innerHTML = ""; });
      return;
    }
    closeMenus(menu);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeMenus(null);
  });

  // --- 4. Cancel an inline tree form -----------------------------------------
  document.addEventListener("click", function (event) {
    var cancel = event.target.closest && event.target.closest("[data-dismiss-form]");
    if (!cancel) return;
    var slot = cancel.closest(".tree-form");
    if (!slot) return; // on a page of its own, Cancel is a plain link
    event.preventDefault();
    slot.innerHTML = "";
  });

  // --- 5. SMS tokens ----------------------------------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-insert-token]");
    if (!button) return;
    var area = document.getElementById(button.getAttribute("data-target"));
    if (!area) return;
    var token = button.getAttribute("data-insert-token");
    var start = area.selectionStart, end = area.selectionEnd;
    area.setRangeText(token, start, end, "end");
    area.focus();
    // The counter and preview listen for typing; inserting a token is typing.
    area.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // --- 6. Flow editor drag and drop (SortableJS) ----------------------------------
  // Palette items are dragged in (a copy: the palette keeps its buttons) to add
  // a step at the drop place; a step's handle drags the step to reorder. The
  // server does the work: a POST of the action and position, or of every step
  // id in the new order; its answer replaces the list, moved items included.
  function stepIds(list) {
    return Array.prototype.map.call(list.querySelectorAll(".flow-step"), function (step) {
      return step.getAttribute("data-step-id");
    });
  }

  function stepsBefore(item) {
    var count = 0;
    for (var sibling = item.previousElementSibling; sibling; sibling = sibling.previousElementSibling) {
      if (sibling.classList.contains("flow-step")) count++;
    }
    return count;
  }

  function addStep(event) {
    var action = event.item.getAttribute("data-palette-action");
    var position = stepsBefore(event.item);
    // The button goes back in place of its copy: htmx has set it up, not the copy.
    event.clone.replaceWith(event.item);
    htmx.ajax("POST", event.to.closest("#flow-steps").getAttribute("data-add-url"), {
      target: "#flow-steps",
      swap: "outerHTML",
      values: { action: action, position: position },
    });
  }

  function reorderSteps(event) {
    var form = document.getElementById("flow-order");
    var ids = stepIds(event.to);
    var before = Array.prototype.map.call(form.querySelectorAll("input[name=step]"), function (input) {
      return input.value;
    });
    if (before.join() === ids.join()) return; // dropped where it was
    form.innerHTML = "";
    ids.forEach(function (id) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "step";
      input.value = id;
      form.appendChild(input);
    });
    htmx.trigger(form, "end");
  }

  htmx.onLoad(function (content) {
    content.querySelectorAll(".palette-items[data-flow-palette]").forEach(function (palette) {
      if (Sortable.get(palette)) return;
      Sortable.create(palette, { group: { name: "flow", pull: "clone", put: false }, sort: false });
    });
    content.querySelectorAll(".flow-list[data-flow-sortable]").forEach(function (list) {
      if (Sortable.get(list)) return;
      Sortable.create(list, {
        group: { name: "flow", pull: false },
        draggable: ".flow-step",
        handle: ".drag-handle",
        animation: 150,
        onAdd: addStep,
        onUpdate: reorderSteps,
      });
    });
  });

  // --- 7. Keep focus across re-renders ---------------------------------------
  // The up/down buttons and the step dropdowns are re-rendered by the request
  // they make; put focus back on their new copy (or its neighbour).
  var focusKey = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var active = document.activeElement;
    focusKey = active && active.getAttribute ? active.getAttribute("data-focus-key") : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!focusKey) return;
    var again = document.querySelector('[data-focus-key="' + focusKey + '"]');
    if (again && again.disabled) {
      // Moved to the top (or bottom): its "up" is now disabled, use "down".
      var other = focusKey.indexOf("up-") === 0 ? focusKey.replace("up-", "down-") : focusKey.replace("down-", "up-");
      again = document.querySelector('[data-focus-key="' + other + '"]');
    }
    if (again && !again.disabled) again.focus();
    focusKey = null;
  });

  // --- 8. Announcements ----------------------------------------------------------
  document.addEventListener("flowChanged", function (event) {
    var announcer = document.getElementById("announcer");
    if (announcer && event.detail && event.detail.message) announcer.textContent = event.detail.message;
  });

  // --- 9. Failed requests ----------------------------------------------------------
  // A refusal explains itself (403.html's [data-error-message]: which
  // permission is missing); the banner says that instead of "try again".
  function explanation(xhr) {
    if (!xhr || !xhr.responseText) return "";
    var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
    var message = page.querySelector("[data-error-message]");
    return message ? message.textContent.trim() : "";
  }
  function showBanner(status, explained) {
    var banner = document.getElementById("request-error");
    if (!banner) return;
    banner.querySelector("[data-status]").textContent = status ? " (" + status + ")" : "";
    banner.querySelector("[data-generic]").hidden = !!explained;
    var text = banner.querySelector("[data-explained]");
    text.textContent = explained;
    text.hidden = !explained;
    banner.hidden = false;
  }
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    showBanner(xhr ? xhr.status : 0, explanation(xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    showBanner(0, "");
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-dismiss-banner]")) {
      event.target.closest("#request-error").hidden = true;
    }
  });

  // --- 10. Smart list logic ------------------------------------------------------------
  // Typing an expression means using it: choose "Advanced" before the text is saved.
  document.addEventListener("input", function (event) {
    var expression = event.target.closest && event.target.closest(".logic-expression");
    if (!expression) return;
    var advanced = expression.form && expression.form.querySelector("input[name=logic_mode][value=expression]");
    if (advanced) advanced.checked = true;
  });
})();
