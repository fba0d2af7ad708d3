// Progressive enhancement: every form works without JavaScript; with it, votes update in place.
(function () {
  "use strict";
  document.addEventListener("submit", async function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("form.vote")) return;
    event.preventDefault();
    const button = form.querySelector("button");
    const count = form.querySelector(".count");
    const voted = form.dataset.voted === "true";
    button.disabled = true;
    try {
      const response = await fetch(form.dataset.api, {
        method: voted ? "DELETE" : "POST",
        headers: { "X-CSRF-Token": form.elements["csrf_token"].value, "Accept": "application/json" },
        credentials: "same-origin",
      });
      if (response.status === 401) { window.location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search); return; }
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      form.dataset.voted = String(body.upvoted);
      form.action = body.upvoted ? form.dataset.unvote : form.dataset.vote;
      form.classList.toggle("on", body.upvoted);
      button.setAttribute("aria-pressed", String(body.upvoted));
      count.textContent = body.upvotes;
    } catch (err) {
      form.submit();  // fall back to the plain form post, which shows what went wrong
    } finally {
      button.disabled = false;
    }
  });
})();

// Search as you type: on the search page, the results follow the query and filters without a submit.
// The page itself is fetched and its results swapped in, so what shows is exactly what the server renders
// (and escapes) for that address; the address bar follows without adding a history entry per keystroke.
(function () {
  "use strict";
  const form = document.querySelector("form.search-form");
  let results = document.getElementById("search-results");
  if (!form || !results || !window.fetch || !window.DOMParser) return;
  const DELAY_MS = 180;  // a pause between keystrokes, not every keystroke (the search is rate-limited)
  const status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  form.after(status);
  let timer = null, controller = null, latest = 0;
  // The search's defaults, as the server renders them on the form.
  const defaults = { mode: form.dataset.defaultMode, sort: form.dataset.defaultSort };
  let shown = address();

  function address() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      const text = String(value).trim();
      // The defaults are left out, as in the links the server writes.
      if (text && defaults[name] !== text) {
        params.append(name, text);
      }
    }
    const query = params.toString();
    return form.getAttribute("action") + (query ? "?" + query : "");
  }

  async function refresh() {
    const url = address();
    if (url === shown) return;
    shown = url;
    const ticket = ++latest;
    if (controller) controller.abort();
    controller = new AbortController();
    results.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin", signal: controller.signal });
      if (response.status === 429) { shown = null; return; }  // too fast: the next pause tries again
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("search-results");
      if (ticket !== latest || !fresh) return;  // a newer query is on its way, or not a search page
      results.replaceWith(fresh);
      results = fresh;
      document.title = page.title;
      history.replaceState(null, "", url);
      const summary = fresh.querySelector(".summary, .alert, .no-results h2");
      status.textContent = summary ? summary.textContent.replace(/\s+/g, " ").trim() : "";
    } catch (err) {
      if (err.name !== "AbortError") shown = null;  // offline or failed: the submit button still works
    } finally {
      if (ticket === latest) results.removeAttribute("aria-busy");
    }
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, DELAY_MS);
  }
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  form.addEventListener("submit", function () { clearTimeout(timer); if (controller) controller.abort(); });
})();

// A list's sort menu applies as soon as it changes (a button does it without JavaScript). A listener
// here rather than an inline onchange: the pages' Content-Security-Policy runs no inline script.
document.addEventListener("change", function (event) {
  const select = event.target;
  if (select instanceof HTMLSelectElement && select.matches("select[data-submit-on-change]") && select.form) {
    select.form.submit();
  }
});

// "/" anywhere but in a field jumps to the search box, as on GitHub and Hugging Face.
document.addEventListener("keydown", function (event) {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select"))) return;
  const box = document.getElementById("q") || document.getElementById("q-top");
  if (!box) return;
  event.preventDefault();
  box.focus();
  box.select();
});
