// Installed in a reading page (by tests/browser/test_fetch_ahead.py and benchmarks/bench_swap.py): records,
// for each Enter, the milliseconds until the next case's viewer is ready (its image drawn), in window.swaps.
() => {
  window.swaps = [];
  const onKey = (e) => { if (e.key === "Enter") window.enterAt = performance.now(); };
  document.addEventListener("keydown", onKey, true);
  new MutationObserver(() => {
    const v = document.querySelector("#case-region .viewer[data-viewer-state=ready]");
    const id = document.querySelector("#case-region")?.dataset.caseId;
    if (v && window.enterAt && id !== window.lastReady) {
      window.swaps.push(performance.now() - window.enterAt);
      window.lastReady = id;
    }
  }).observe(document.body, { subtree: true, attributes: true, childList: true });
  window.lastReady = document.querySelector("#case-region").dataset.caseId;
}
