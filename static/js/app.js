/* Small behaviours htmx does not cover. Everything is delegated from
 * `document`, so it keeps working after htmx swaps parts of the page.
 *
 * 1. Language switcher submits on change.      5. Token buttons of the SMS editor.
 * 2. The tree marks the page that is open.     6. Flow editor: native HTML5 drag and drop.
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

  // --- 6. Flow editor drag and drop -------------------------------------------
  // Palette items are dragged in to add a step at the drop place; a step's
  // handle drags the step to reorder. The server does the work: a POST of the
  // action and position, or of every step id in the new order.
  var dragged = null;
  var marker = null;

  function steps(list) {
    return Array.prototype.filter.call(list.querySelectorAll(".flow-step"), function (step) {
      return !step.classList.contains("is-dragging");
    });
  }

  function dropIndex(list, y) {
    var items = steps(list);
    for (var i = 0; i < items.length; i++) {
      var box = items[i].getBoundingClientRect();
      if (y < box.top + box.height / 2) return i;
    }
    return items.length;
  }

  function showMarker(list, index) {
    if (!marker) {
      marker = document.createElement("li");
      marker.className = "drop-marker";
      marker.setAttribute("aria-hidden", "true");
    }
    var ol = list.querySelector(".flow-list");
    var items = steps(list);
    ol.insertBefore(marker, items[index] || null);
    list.classList.add("is-drop-target");
  }

  function clearDrag() {
    if (marker && marker.parentNode) marker.parentNode.removeChild(marker);
    document.querySelectorAll(".is-dragging").forEach(function (el) { el.classList.remove("is-dragging"); });
    document.querySelectorAll(".is-drop-target").forEach(function (el) { el.classList.remove("is-drop-target"); });
    dragged = null;
  }

  document.addEventListener("dragstart", function (event) {
    var target = event.target.nodeType === 1 ? event.target : event.target.parentElement;
    var item = target.closest("[data-palette-action]");
    var handle = target.closest(".drag-handle");
    if (item) {
      dragged = { kind: "palette", action: item.getAttribute("data-palette-action") };
      event.dataTransfer.effectAllowed = "copy";
      event.dataTransfer.setData("text/plain", dragged.action);
    } else if (handle) {
      var step = handle.closest(".flow-step");
      dragged = { kind: "step", id: step.getAttribute("data-step-id"), element: step };
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragged.id);
      event.dataTransfer.setDragImage(step, 24, 24);
      // Marked after the browser took the drag image, so the image is not faded.
      setTimeout(function () { step.classList.add("is-dragging"); }, 0);
    }
  });

  document.addEventListener("dragover", function (event) {
    var list = dragged && event.target.closest && event.target.closest("#flow-steps");
    if (!list) return;
    event.preventDefault(); // allows the drop
    event.dataTransfer.dropEffect = dragged.kind === "palette" ? "copy" : "move";
    showMarker(list, dropIndex(list, event.clientY));
  });

  document.addEventListener("dragleave", function (event) {
    var list = event.target.closest && event.target.closest("#flow-steps");
    if (list && !list.contains(event.relatedTarget)) {
      if (marker && marker.parentNode) marker.parentNode.removeChild(marker);
      list.classList.remove("is-drop-target");
    }
  });

  document.addEventListener("drop", function (event) {
    var list = dragged && event.target.closest && event.target.closest("#flow-steps");
    if (!list) return;
    event.preventDefault();
    var index = dropIndex(list, event.clientY);
    var current = dragged;
    clearDrag();
    if (current.kind === "palette") {
      htmx.ajax("POST", list.getAttribute("data-add-url"), {
        target: "#flow-steps",
        swap: "outerHTML",
        values: { action: current.action, position: index },
      });
      return;
    }
    var ids = steps(list).map(function (step) { return step.getAttribute("data-step-id"); });
    ids = ids.filter(function (id) { return id !== current.id; });
    ids.splice(index > ids.length ? ids.length : index, 0, current.id);
    var form = document.getElementById("flow-order");
    var before = Array.prototype.map.call(form.querySelectorAll("input[name=step]"), function (input) { return input.value; });
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
  });

  document.addEventListener("dragend", clearDrag);

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
