"""CSV export of 100,000 readings: time and peak memory, streamed versus COPY and a load-everything export.

Seeds one study of 1,000 cases read by 100 readers, with the cases, reader orders and readings inserted
in bulk by SQL (the domain path would take minutes), then measures in the same run:
  (a) app.domain.exports.export_lines consumed in-process: time, tracemalloc peak, RSS growth;
  (b) GET /studies/{id}/export.csv from uvicorn in its own process, streamed by httpx: time, server RSS;
  (c) baselines: Postgres COPY (SELECT ... same joins ...) TO STDOUT through psycopg, and a naive export
      that loads every row into a list (session.execute(stmt).all()) before writing.

    .venv/bin/python benchmarks/bench_export.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import filecmp
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import httpx
import psycopg
from _setup import (
    PASSWORD,
    BenchEnv,
    add_database_option,
    bench_database,
    count_lines,
    csv_records,
    login,
    serve,
    timed,
    traced_peak,
)
from _setup import phantom_set as make_phantom_set
from psycopg import sql
from sqlalchemy import text
from tqdm import tqdm

SEED_CASES = 16  # drawn and rendered through the domain; the rest reuse their images

EXTRA_CASES = """
INSERT INTO cases (study_id, image_id, opaque_id, sha256, truth, is_practice)
SELECT :sid, c.image_id, md5('bench-' || CAST(:sid AS text) || '-' || g), c.sha256, c.truth, false
FROM generate_series(1, :n) AS g
JOIN (SELECT row_number() OVER (ORDER BY id) - 1 AS k, count(*) OVER () AS m, image_id, sha256, truth
      FROM cases WHERE study_id = :sid) AS c ON c.k = g % c.m
"""
LAUNCH = """
UPDATE studies SET status = 'launched', launched_at = now(), frozen_at = now(),
       n_cases = (SELECT count(*) FROM cases WHERE study_id = :sid)
WHERE id = :sid
"""
# One reader's order: a per-reader shuffle (md5 of reader and case), shown 40 s apart.
READER_ORDER = """
INSERT INTO reader_cases (study_id, reader_id, case_id, position, shown_at)
SELECT :sid, :rid, o.id, o.pos, timestamptz '2026-11-02 08:00+00' + o.pos * interval '40 seconds'
FROM (SELECT id, row_number() OVER (ORDER BY md5(CAST(id AS text) || '/' || CAST(:rid AS text))) - 1 AS pos
      FROM cases WHERE study_id = :sid) AS o
"""
# One reader's answers; some carry findings, free text with a quote and a comma (CSV quoting), a click.
READINGS = """
INSERT INTO readings (study_id, case_id, reader_id, revision, client_token, verdict, confidence, findings,
                      free_text, click_x, click_y, position, is_practice, shown_at, submitted_at,
                      client_active_ms)
SELECT rc.study_id, rc.case_id, rc.reader_id, 0, md5('token-' || CAST(rc.id AS text)),
       CASE WHEN random() < 0.5 THEN 'real' ELSE 'synthetic' END,
       1 + floor(random() * 5)::int,
       CASE WHEN random() < 0.25
            THEN jsonb_build_array(s.findings -> floor(random() * jsonb_array_length(s.findings))::int)
            ELSE '[]'::jsonb END,
       CASE WHEN rc.position % 10 = 0 THEN 'ribs look "too smooth", edges too sharp' END,
       CASE WHEN rc.position % 3 = 0 THEN random() END,
       CASE WHEN rc.position % 3 = 0 THEN random() END,
       rc.position, c.is_practice, rc.shown_at,
       rc.shown_at + (3 + random() * 30) * interval '1 second',
       (2000 + random() * 20000)::int
FROM reader_cases rc JOIN cases c ON c.id = rc.case_id JOIN studies s ON s.id = rc.study_id
WHERE rc.study_id = :sid AND rc.reader_id = :rid
"""


def seed(env: BenchEnv, n_readers: int, n_cases: int) -> int:
    """A launched study of n_cases cases whose n_readers readers all answered every case; its id."""
    from app.core.config import get_settings
    from app.domain import studies, users
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope

    store = BlobStore(get_settings().images_dir)
    with session_scope() as session:
        researcher = users.create_user(
            session, email="researcher@bench.local", name="Researcher", role="researcher", password=PASSWORD
        )
        readers = []
        for i in tqdm(range(n_readers), desc="reader accounts", unit="user", leave=False):
            # No password: these readers never sign in, and argon2 would cost ~0.1 s each.
            u = users.create_user(session, email=f"reader{i:03d}@bench.local", name=f"R{i}", role="reader")
            specialty = users.SPECIALTIES[i % len(users.SPECIALTIES)]
            users.save_intake(
                session, u, years_experience=i % 30, specialty=specialty, board_certified=i % 3 > 0
            )
            readers.append(u.id)
        sets = [
            make_phantom_set(session, store, name=f"Bench {kind}", kind=kind, n=12, size=64, seed=s)
            for kind, s in (("real", 0), ("synthetic", 1))
        ]
        design = studies.StudyDesign(
            title='Bench export: "100k" readings, streamed',
            image_set_ids=[s.id for s in sets],
            n_cases=SEED_CASES,
            resolution=64,
            ask_findings=True,
            ask_free_text=True,
            ask_click=True,
            seed=7,
            reader_ids=readers,
        )
        sid = studies.create_study(session, store, design, actor_id=researcher.id).id
    with session_scope() as session:
        session.execute(text(EXTRA_CASES), {"sid": sid, "n": n_cases - SEED_CASES})
        session.execute(text(LAUNCH), {"sid": sid})
        for rid in tqdm(readers, desc="orders + readings", unit="reader", leave=False):
            session.execute(text(READER_ORDER), {"sid": sid, "rid": rid})
            session.execute(text(READINGS), {"sid": sid, "rid": rid})
    with session_scope() as session:
        session.execute(text("ANALYZE"))
    return sid


def export_stmt(study_id: int):  # noqa: ANN201 - a SQLAlchemy Select
    """The exact statement app.persistence.repositories.results.export_rows executes (yield_per included)."""
    from app.persistence.repositories import results

    captured = SimpleNamespace(stmt=None)

    def execute(stmt):  # noqa: ANN001, ANN202
        captured.stmt = stmt
        return iter(())

    list(results.export_rows(SimpleNamespace(execute=execute), study_id))
    return captured.stmt


def streamed(study_id: int, out: Path) -> int:
    """The app's export: export_lines from a server-side cursor, written line by line; returns lines."""
    from app.domain import exports
    from app.persistence.db import get_sessionmaker
    from app.persistence.models import Study

    with get_sessionmaker()() as session, out.open("w", newline="") as fh:
        n = 0
        for line in exports.export_lines(session, session.get(Study, study_id)):
            fh.write(line)
            n += 1
        return n


def naive(study_id: int, out: Path) -> int:
    """Baseline: every row fetched into a list (no server-side cursor), every line built, then written."""
    from app.domain import exports
    from app.persistence.db import get_sessionmaker
    from app.persistence.models import Study

    stmt = export_stmt(study_id).execution_options(yield_per=None)
    with get_sessionmaker()() as session:
        study = session.get(Study, study_id)
        rows = session.execute(stmt).all()
        # Same formatting code as the app, fed from the list instead of the cursor.
        with mock.patch.object(exports.repo, "export_rows", lambda _s, _id: rows):
            lines = list(exports.export_lines(session, study))
        out.write_text("".join(lines), newline="")
        return len(lines)


def copy_baseline(env: BenchEnv, study_id: int, findings: list[str], out: Path) -> int:
    """Baseline: COPY of the same join (same rows, order and columns) to STDOUT via psycopg; bytes."""
    marked = [sql.SQL("(r.findings ? {})::int").format(sql.Literal(f)) for f in findings]
    labels = [sql.SQL("(i.labels ? {})::int").format(sql.Literal(f)) for f in findings]
    query = sql.SQL(
        """COPY (SELECT s.id, s.title, u.pseudonym, u.years_experience, u.specialty, u.board_certified,
            c.opaque_id, iset.name, i.source_name, c.truth, r.verdict, r.verdict = c.truth, r.confidence,
            CASE WHEN r.verdict = 'synthetic' THEN r.confidence ELSE -r.confidence END, r.free_text,
            r.click_x, r.click_y, r.position, r.is_practice, r.revision, r.supersedes_id, r.id, rc.shown_at,
            r.submitted_at, (extract(epoch FROM r.submitted_at - rc.shown_at) * 1000)::bigint,
            r.client_active_ms, {cols}
        FROM readings r JOIN studies s ON s.id = r.study_id JOIN cases c ON c.id = r.case_id
        JOIN images i ON i.id = c.image_id JOIN image_sets iset ON iset.id = i.image_set_id
        JOIN users u ON u.id = r.reader_id
        JOIN reader_cases rc ON rc.case_id = r.case_id AND rc.reader_id = r.reader_id
        WHERE r.study_id = {sid} ORDER BY u.pseudonym, r.position, r.revision) TO STDOUT WITH CSV HEADER"""
    ).format(cols=sql.SQL(", ").join(marked + labels), sid=sql.Literal(study_id))
    size = 0
    with (
        psycopg.connect(env.libpq_url) as conn,
        conn.cursor() as cur,
        out.open("wb") as fh,
        cur.copy(query) as copy,
    ):
        for block in copy:
            size += fh.write(block)
    return size


def http_export(base: str, study_id: int, out: Path, server_pid: int) -> tuple[float, float, float]:
    """Download the export endpoint to a file: (seconds, seconds to first byte, server RSS growth MiB)."""
    with httpx.Client(base_url=base, timeout=120.0) as client:
        login(client, "researcher@bench.local")
        client.get(f"/studies/{study_id}/codebook.csv").raise_for_status()  # warm: imports, pool, templates
        first: list[float] = []

        def download() -> None:
            t0 = time.perf_counter()
            with client.stream("GET", f"/studies/{study_id}/export.csv") as resp, out.open("wb") as fh:
                resp.raise_for_status()
                for chunk in resp.iter_raw():
                    if not first:
                        first.append(time.perf_counter() - t0)
                    fh.write(chunk)

        # The sampler's first reading is the idle server, so growth is "peak minus idle".
        _, seconds, rss = timed(download, pid=server_pid)
        return seconds, first[0], rss


def report(env: BenchEnv, args: argparse.Namespace, r: dict, files: dict[str, Path]) -> None:
    """Print the table, the line counts and the ratios."""
    rows = r["lines"] - 1
    print(f"\nbench_export: {env.label}; {rows:,} readings ({args.readers} readers x {args.cases} cases)")
    print(f"  {'method':<32}{'time s':>8}{'rows/s':>10}{'py peak MiB':>13}{'RSS +MiB':>10}")
    table = [
        ("export_lines, in-process", r["t_stream"], r["py_stream"], r["rss_stream"]),
        ("HTTP export.csv (server RSS)", r["t_http"], None, r["rss_http"]),
        ("COPY ... TO STDOUT (psycopg)", r["t_copy"], None, None),
        ("naive .all() then write", r["t_naive"], r["py_naive"], r["rss_naive"]),
    ]
    for name, t, py, rss in table:
        py_s = f"{py:>13.1f}" if py is not None else " " * 13
        rss_s = f"{rss:>10.1f}" if rss is not None else ""
        print(f"  {name:<32}{t:>8.2f}{rows / t:>10,.0f}{py_s}{rss_s}")
    print(f"  HTTP time to first byte: {r['ttfb'] * 1000:.0f} ms")
    counts = {k: count_lines(f) for k, f in files.items()}
    print(
        f"  lines (header + rows): in-process {counts['inprocess']:,}, HTTP {counts['http']:,} "
        f"(CSV records {csv_records(files['http']):,}), COPY {counts['copy']:,}, naive {counts['naive']:,}; "
        f"expected {args.readers * args.cases + 1:,}"
    )
    same = all(filecmp.cmp(files["inprocess"], files[k], shallow=False) for k in ("http", "naive"))
    print(f"  in-process, HTTP and naive files byte-identical: {'yes' if same else 'NO'}")
    print(
        f"  ratio time streamed / COPY: in-process {r['t_stream'] / r['t_copy']:.1f}, "
        f"HTTP {r['t_http'] / r['t_copy']:.1f}"
    )
    print(
        f"  ratio peak memory naive / streamed: tracemalloc {r['py_naive'] / r['py_stream']:.1f}, "
        f"RSS growth {r['rss_naive'] / max(r['rss_stream'], 0.1):.1f}"
    )


def main() -> None:
    """Seed, measure each method, print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--cases", type=int, default=1000)
    args = parser.parse_args()
    if args.cases <= SEED_CASES:
        parser.error(f"--cases must exceed {SEED_CASES}")

    with bench_database(args.database_url) as env:
        t0 = time.perf_counter()
        sid = seed(env, args.readers, args.cases)
        print(f"seeded {args.readers * args.cases:,} readings in {time.perf_counter() - t0:.1f} s")
        from app.persistence.db import session_scope
        from app.persistence.models import Study

        with session_scope() as session:
            findings = list(session.get(Study, sid).findings)
        out = env.store_dir / "exports"
        out.mkdir()
        files = {k: out / f"{k}.csv" for k in ("inprocess", "http", "copy", "naive")}
        r: dict = {}
        # Imported before measuring, so that module loading (scipy via statistics) is not counted as RSS.
        import app.domain.exports  # noqa: F401

        print("in-process export_lines ...")
        r["lines"], r["t_stream"], r["rss_stream"] = timed(lambda: streamed(sid, files["inprocess"]))
        r["py_stream"] = traced_peak(lambda: streamed(sid, out / "traced.csv"))
        print("HTTP export from uvicorn ...")
        with serve(env) as (base, proc):
            r["t_http"], r["ttfb"], r["rss_http"] = http_export(base, sid, files["http"], proc.pid)
        print("COPY baseline ...")
        _, r["t_copy"], _ = timed(lambda: copy_baseline(env, sid, findings, files["copy"]))
        print("naive baseline ...")
        _, r["t_naive"], r["rss_naive"] = timed(lambda: naive(sid, files["naive"]))
        r["py_naive"] = traced_peak(lambda: naive(sid, out / "traced.csv"))
        report(env, args, r, files)


if __name__ == "__main__":
    main()
