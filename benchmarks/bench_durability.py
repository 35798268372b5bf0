"""Durability: concurrent readers with double and simultaneous submits while the server is stopped with
SIGTERM and killed with SIGKILL mid-run. Prints attempts, acknowledged, stored, lost and duplicated
readings, and exits non-zero when anything acknowledged was lost or anything was stored twice.

Each simulated reader (a thread with its own cookie jar) reads its cases in order. Every answer carries a
client token; a share of answers is sent twice at the same moment (a double click), and any answer whose
request fails (the server is down) is sent again with the same token until the server acknowledges it,
as the reading page's script does. Meanwhile the main thread stops the server gracefully, starts it again,
then kills it without warning and starts it again. At the end the database is the judge: every
acknowledged token must be stored exactly once.

    .venv/bin/python benchmarks/bench_durability.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from _setup import add_database_option, bench_database, csrf_of, free_port, login, start_server, stop_server
from bench_reading import seed

CASE_ID = re.compile(r'name="case_id" value="([^"]+)"')


@dataclass
class Tally:
    """What one reader sent and what the server acknowledged."""

    attempts: int = 0  # POSTs sent, retries and doubles included
    transport_errors: int = 0  # requests that failed because the server was down or went away
    acknowledged: set[str] = field(default_factory=set)  # tokens the server answered 303 or 200 to
    refused: Counter[int] = field(default_factory=Counter)  # other statuses, by code


def until_answered(send, *, deadline: float) -> httpx.Response | None:
    """Call `send` until the server answers (any HTTP status), retrying transport errors; None past the
    deadline."""
    while time.monotonic() < deadline:
        try:
            return send()
        except httpx.TransportError:
            time.sleep(0.2)
    return None


def read_all(
    base: str, email: str, study_id: int, rng: random.Random, double: float, deadline: float
) -> Tally:
    """One reader's whole study, answering through restarts."""
    tally = Tally()
    with httpx.Client(base_url=base, timeout=10.0) as client, ThreadPoolExecutor(2) as pool:
        until_answered(lambda: login(client, email), deadline=deadline)
        while time.monotonic() < deadline:
            page = until_answered(lambda: client.get(f"/read/{study_id}/case"), deadline=deadline)
            if page is None or page.status_code == 303:  # finished (or out of time)
                break
            m = CASE_ID.search(page.text) if page.status_code == 200 else None
            if m is None:
                tally.refused[page.status_code] += 1
                time.sleep(0.2)
                continue
            form = {
                "csrf_token": csrf_of(page.text),
                "case_id": m.group(1),
                "client_token": uuid.uuid4().hex,
                "verdict": rng.choice(("real", "synthetic")),
                "confidence": str(rng.randint(1, 5)),
            }
            token = form["client_token"]
            while time.monotonic() < deadline and token not in tally.acknowledged:
                copies = 2 if rng.random() < double else 1  # a double click sends both at once
                futures = [
                    pool.submit(client.post, f"/read/{study_id}/case", data=form, follow_redirects=False)
                    for _ in range(copies)
                ]
                for f in futures:
                    tally.attempts += 1
                    try:
                        r = f.result()
                    except httpx.TransportError:
                        tally.transport_errors += 1
                        continue
                    if r.status_code in (200, 303):
                        tally.acknowledged.add(token)
                    else:
                        tally.refused[r.status_code] += 1
                if token not in tally.acknowledged:
                    time.sleep(0.2)  # the server is restarting: try the same token again
    return tally


def stored_tokens(study_id: int) -> Counter[str]:
    """How many readings each client token has in the study."""
    from sqlalchemy import select

    from app.persistence.db import session_scope
    from app.persistence.models import Case, Reading

    with session_scope() as session:
        rows = session.scalars(
            select(Reading.client_token)
            .join(Case, Case.id == Reading.case_id)
            .where(Case.study_id == study_id)
        )
        return Counter(rows)


def main() -> None:
    """Seed, serve, read while stopping and killing the server, count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--readers", type=int, default=10, help="Concurrent simulated readers.")
    parser.add_argument("--cases", type=int, default=40, help="Cases of the study.")
    parser.add_argument("--double", type=float, default=0.3, help="Share of answers sent twice at once.")
    parser.add_argument("--term-after", type=float, default=4.0, help="Seconds until the SIGTERM.")
    parser.add_argument("--kill-after", type=float, default=4.0, help="Seconds after restart until SIGKILL.")
    parser.add_argument("--deadline", type=float, default=600.0, help="Seconds the readers may take.")
    args = parser.parse_args()
    setup = argparse.Namespace(  # what bench_reading's seed reads
        readers=args.readers,
        solo_readers=0,
        images=max(args.cases, 20),
        size=64,
        cases=args.cases,
        practice=0,
    )
    with bench_database(args.database_url) as env:
        study_id, emails = seed(env, setup)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(env, port)
        deadline = time.monotonic() + args.deadline
        with ThreadPoolExecutor(args.readers) as readers:
            futures = [
                readers.submit(read_all, base, email, study_id, random.Random(i), args.double, deadline)
                for i, email in enumerate(emails)
            ]
            events = []
            time.sleep(args.term_after)
            proc.send_signal(signal.SIGTERM)  # graceful: in-flight requests finish, new ones are refused
            proc.wait(timeout=30)
            events.append(f"SIGTERM at {args.term_after:.0f} s (exit {proc.returncode})")
            proc = start_server(env, port)
            time.sleep(args.kill_after)
            proc.send_signal(signal.SIGKILL)  # no warning: requests in flight die with the process
            proc.wait(timeout=30)
            events.append(f"SIGKILL {args.kill_after:.0f} s after the restart")
            proc = start_server(env, port)
            tallies = [f.result() for f in futures]
        stop_server(proc)
        stored = stored_tokens(study_id)

    acknowledged = set().union(*(t.acknowledged for t in tallies))
    lost = acknowledged - set(stored)
    duplicated = {token for token, n in stored.items() if n > 1}
    refused = sum((t.refused for t in tallies), Counter())
    print(f"{args.readers} readers x {args.cases} cases, {args.double:.0%} of answers sent twice at once")
    print("server: " + "; ".join(events) + "; restarted after each")
    print(f"  attempts (POSTs, retries and doubles included) {sum(t.attempts for t in tallies):>7}")
    print(f"  failed in transport (server down)              {sum(t.transport_errors for t in tallies):>7}")
    print(f"  refused by status {dict(refused) or '-'}")
    print(f"  acknowledged answers                           {len(acknowledged):>7}")
    print(f"  stored readings                                {sum(stored.values()):>7}")
    print(f"  lost (acknowledged, not stored)                {len(lost):>7}")
    print(f"  duplicated (one token stored twice)            {len(duplicated):>7}")
    complete = len(acknowledged) == args.readers * args.cases
    print(f"  every reader finished: {'yes' if complete else 'no'}")
    sys.exit(1 if lost or duplicated or not complete else 0)


if __name__ == "__main__":
    main()
