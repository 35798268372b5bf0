"""Enter -> next image drawn, in Debian's Chromium, with and without fetching the next image ahead.

What the radiologist feels between cases: from the Enter that submits an answer to the next radiograph
drawn in the viewer (measured in the page with performance.now(); tests/browser/swap_watch.js). The same
reader's loop runs twice in one run against one server: as the product serves it (the viewer fetches and
decodes the next case's image while the current one is read), and with fetching ahead switched off in the
page (an observer strips data-next-src before the viewer reads it), which is what every swap cost before.
Each phase reads its own account's cases with keyboard only; the image requests made during swaps are
counted too.

    .venv/bin/python benchmarks/bench_swap.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _setup import (
    PASSWORD,
    ROOT,
    BenchEnv,
    add_database_option,
    bench_database,
    percentile,
    phantom_set,
    serve,
)
from tqdm import tqdm

CHROMIUM = Path("/usr/bin/chromium")
WATCH = (ROOT / "tests" / "browser" / "swap_watch.js").read_text()
# Before any page script: strip data-next-src from every viewer as it enters the document.
NO_AHEAD = """new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    if (!n.querySelectorAll) continue;
    for (const v of [n, ...n.querySelectorAll("[data-next-src]")]) v.removeAttribute?.("data-next-src");
  }
}).observe(document, { subtree: true, childList: true });"""


def seed(env: BenchEnv, args: argparse.Namespace) -> tuple[int, list[str]]:
    """Two phantom sets and a launched study read by one account per phase; returns (study id, emails)."""
    from app.core.config import get_settings
    from app.domain import studies, users
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope

    store = BlobStore(get_settings().images_dir)
    with session_scope() as session:
        admin = users.create_user(session, email="admin@bench.local", name="Admin", role="admin")
        readers = []
        for i in range(2):
            u = users.create_user(
                session, email=f"swap{i}@bench.local", name=f"Reader {i}", role="reader", password=PASSWORD
            )
            users.save_intake(session, u, years_experience=5, specialty="Radiology", board_certified=True)
            readers.append(u)
        sets = [
            phantom_set(session, store, name=f"Swap {k}", kind=k, n=args.cases, size=args.size, seed=s)
            for k, s in (("real", 0), ("synthetic", 1))
        ]
        design = studies.StudyDesign(
            title="Swap bench",
            image_set_ids=[s.id for s in sets],
            n_cases=args.cases,
            practice_cases=0,
            resolution=args.size,
            seed=7,
            reader_ids=[r.id for r in readers],
        )
        study = studies.create_study(session, store, design, actor_id=admin.id)
        studies.launch(session, store, study.id, actor_id=admin.id)
        return study.id, [r.email for r in readers]


def read(browser, base: str, study_id: int, email: str, *, ahead: bool, n: int) -> tuple[list[float], int]:
    """Read n cases by keyboard; returns (ms per swap, image requests made during swaps)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if not ahead:
        context.add_init_script(NO_AHEAD)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/img/" in r.url else None)
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/read/{study_id}/case")
    page.wait_for_selector("#case-region .viewer[data-viewer-state=ready]")
    page.evaluate(WATCH)
    during = 0
    for k in tqdm(range(n), desc="ahead" if ahead else "no ahead", unit="case", leave=False):
        time.sleep(0.3)  # a reader looks before answering; the fetch ahead has this long
        before = len(requests)
        for key in ("r", "3", "Enter"):
            page.keyboard.press(key)
        page.wait_for_function("(n) => window.swaps.length === n", arg=k + 1)
        shown = page.locator("#case-region").get_attribute("data-case-id")
        during += sum(1 for url in requests[before:] if url.endswith("/img/" + shown))
    swaps = page.evaluate("() => window.swaps")
    context.close()
    return swaps, during


def main() -> None:
    """Seed, serve, read twice, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument(
        "--cases", type=int, default=40, help="Cases in the study (each phase reads all but one)."
    )
    parser.add_argument("--size", type=int, default=512, help="Image side length (px).")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with bench_database(args.database_url) as env:
        study_id, emails = seed(env, args)
        with serve(env) as (base, _proc), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
            n = args.cases - 1
            results = {
                "fetched ahead (the product)": read(browser, base, study_id, emails[0], ahead=True, n=n),
                "no fetching ahead": read(browser, base, study_id, emails[1], ahead=False, n=n),
            }
            browser.close()
    print(f"\nbench_swap: {env.label}; {args.size} px cases, uvicorn 1 process, headless Chromium, loopback")
    print(f"  {'phase':<30}{'swaps':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'image GETs in swaps':>21}")
    p50 = {}
    for name, (swaps, during) in results.items():
        q = [percentile(swaps, x) for x in (50, 95)]
        p50[name] = q[0]
        print(f"  {name:<30}{len(swaps):>6}{q[0]:>9.1f}{q[1]:>9.1f}{max(swaps):>9.1f}{during:>21}")
    names = list(results)
    print(f"  ratio p50 {names[0]} / {names[1]}: {p50[names[0]] / p50[names[1]]:.2f}")
    print("  aim (issue 14): p95 of the product's swap <= 50 ms")


if __name__ == "__main__":
    main()
