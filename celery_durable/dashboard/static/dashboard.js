// Auto-refresh: every few seconds, fetch the page again and swap each [data-refresh]
// block for its new version (a workflow page stops once the workflow has finished).
(function () {
  "use strict";
  const period = Number(document.body.dataset.refreshMs || 0);
  const box = document.getElementById("auto-refresh");
  if (!period || !box) return;
  box.checked = localStorage.getItem("celery-durable-refresh") !== "off";
  box.addEventListener("change", function () {
    localStorage.setItem("celery-durable-refresh", box.checked ? "on" : "off");
  });
  async function refresh() {
    const blocks = document.querySelectorAll("[data-refresh]");
    if (!box.checked || blocks.length === 0 || document.querySelector("[data-final]")) return;
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    blocks.forEach(function (block) {
      const next = fresh.querySelector('[data-refresh="' + block.dataset.refresh + '"]');
      if (!next) return;
      // A traceback the reader opened stays open in the new version.
      block.querySelectorAll("details[open][id]").forEach(function (opened) {
        const again = next.querySelector('details[id="' + opened.id + '"]');
        if (again) again.open = true;
      });
      block.replaceWith(next);
    });
  }
  setInterval(function () { refresh().catch(function () {}); }, period);
})();
