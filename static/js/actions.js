// Small page behaviours that were inline handlers, which the Content-Security-Policy forbids
// (app/web/headers.py). Delegated from the document, so they also hold in content htmx swaps in.
document.addEventListener("click", (e) => {
  const target = e.target instanceof Element ? e.target : null;
  if (!target) return;
  // A one-time invite link: one click selects all of it, ready to copy.
  const field = target.closest("input[data-select-on-click]");
  if (field) field.select();
  if (target.closest("[data-action=print]")) window.print();
});
