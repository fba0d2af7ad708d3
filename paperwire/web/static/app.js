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
