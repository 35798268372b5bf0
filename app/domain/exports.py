"""CSV export of a study's readings, streamed row by row, and the codebook that defines every column."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy.orm import Session

from app.domain.analysis import Read, counted, duration_ms
from app.domain.ratings import rating
from app.domain.readings import UNREADABLE_LABELS
from app.persistence.models import Study
from app.persistence.repositories import memorisation
from app.persistence.repositories import results as repo

POSITIVE_CLASS_NOTE = (
    "Positive class = synthetic: sensitivity is the share of synthetic images called synthetic, "
    "specificity the share of real images called real."
)

# (column, type, definition); finding columns are added per study.
BASE_COLUMNS: list[tuple[str, str, str]] = [
    ("study_id", "integer", "Study identifier."),
    ("study_title", "text", "Study title."),
    ("reader_id", "text", "Pseudonymous reader id; never the reader's name or email."),
    ("reader_years_experience", "integer", "Reader's years of experience (intake)."),
    ("reader_specialty", "text", "Reader's specialty (intake)."),
    ("reader_board_certified", "boolean", "Reader is board certified (intake): true/false."),
    (
        "case_id",
        "text",
        "Opaque case id, as the reader's image was served; a test-retest repeat was served under an id of "
        "its own, but its rows carry the case's id so that the two showings pair up.",
    ),
    ("image_set", "text", "Name of the image set the case came from."),
    ("source_name", "text", "The image's file or generator name within its set."),
    ("truth", "text", "real or synthetic. " + POSITIVE_CLASS_NOTE),
    ("verdict", "text", "The reader's call: real or synthetic (blank when flagged unreadable)."),
    ("correct", "boolean", "verdict equals truth (blank when flagged unreadable)."),
    ("confidence", "integer", "Confidence in the verdict, 1 (guess) to 5 (certain); blank when unreadable."),
    (
        "score",
        "integer",
        "Ordinal rating of 'synthetic' for ROC and MRMC analysis, 1 to 10: real with confidence 5 = 1 ... "
        "real 1 = 5, synthetic 1 = 6 ... synthetic 5 = 10. A score above 5.5 is a 'synthetic' call. "
        "Blank when flagged unreadable.",
    ),
    (
        "unreadable",
        "boolean",
        "true when the reader flagged the case unreadable instead of answering. Such readings are left out "
        "of every figure and counted on the results page.",
    ),
    (
        "unreadable_reason",
        "text",
        "Why the case was flagged: " + "; ".join(f"{k} = {v}" for k, v in UNREADABLE_LABELS.items()) + ".",
    ),
    (
        "free_text",
        "text",
        "What gave it away, in the reader's words (blank when not asked). Text cells that begin with "
        "=, +, -, @, tab or CR carry a leading ' so spreadsheets do not run them as formulas.",
    ),
    ("click_x", "float", "Giveaway click, x as a fraction of image width from the left (blank when none)."),
    ("click_y", "float", "Giveaway click, y as a fraction of image height from the top (blank when none)."),
    (
        "position",
        "integer",
        "0-based position of the case in this reader's order (practice cases come first).",
    ),
    ("practice", "boolean", "A practice case with feedback; exclude from analysis."),
    (
        "presentation",
        "integer",
        "1 for a case's first showing to this reader; 2 for its test-retest repeat, shown again unannounced "
        "later in the order. Analyse presentation 1; pair 1 with 2 for test-retest agreement.",
    ),
    ("revision", "integer", "0 for the first answer; n for the n-th revision where the study allows them."),
    ("supersedes_reading", "integer", "Id of the reading this revision replaces (blank for first answers)."),
    ("reading_id", "integer", "Id of this reading."),
    (
        "is_latest",
        "boolean",
        "true for the reading that counts: the latest revision of this reader's answer to this case. "
        "Analyse rows with is_latest = true and practice = false.",
    ),
    ("shown_at", "timestamp", "Server time (UTC, ISO 8601) the case was first shown to the reader."),
    ("submitted_at", "timestamp", "Server time (UTC, ISO 8601) the answer was stored."),
    (
        "duration_ms",
        "integer",
        "submitted_at minus shown_at, in milliseconds (server clock); blank for revisions.",
    ),
    (
        "active_ms",
        "integer",
        "Milliseconds the browser saw the reader active on the case (visible, recent input).",
    ),
    ("screen_width_px", "integer", "Screen width in CSS pixels, as the browser reported it at submit."),
    ("screen_height_px", "integer", "Screen height in CSS pixels."),
    ("window_width_px", "integer", "Browser window (viewport) width in CSS pixels at submit."),
    ("window_height_px", "integer", "Browser window (viewport) height in CSS pixels at submit."),
    (
        "device_pixel_ratio",
        "float",
        "Device pixels per CSS pixel (2 on most high-density screens; browser zoom changes it too).",
    ),
    (
        "zoom_at_submit",
        "float",
        "The viewer's zoom at submit in device pixels per image pixel: 1 shows the film's own pixels one to "
        "one on the screen, below 1 shrinks it.",
    ),
    (
        "reached_one_to_one",
        "boolean",
        "true when the image was shown at 1:1 or larger (zoom >= 1) at some point before submitting.",
    ),
    (
        "one_to_one_ms",
        "integer",
        "Milliseconds the image was shown at 1:1 or larger while the page was visible.",
    ),
    ("browser", "text", "The browser's User-Agent at submit, shortened to 200 characters."),
    (
        "memorisation_flag",
        "boolean",
        "true when the latest memorisation audit of the image found it a near-copy of a training film, "
        "false when it was audited and not flagged; blank when never audited (real images are not).",
    ),
]


def columns(study: Study) -> list[tuple[str, str, str]]:
    """All columns of a study's export, finding columns included."""
    cols = list(BASE_COLUMNS)
    for f in study.findings if study.ask_findings else ():
        cols.append((f"marked_{f}", "0/1", f"1 when the reader marked {f} on the pathology checklist."))
    for f in study.findings:
        cols.append(
            (
                f"label_{f}",
                "0/1",
                f"1 when the image's label (or, for synthetic images, its target) includes {f}; "
                "blank when the image's set carries no labels.",
            )
        )
    return cols


def _csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(v: str | None) -> str:
    """Text a spreadsheet will not run as a formula: a leading =, +, -, @, tab or CR gets a quote."""
    if not v:
        return ""
    return "'" + v if v.startswith(_FORMULA_START) else v


def _bool(v: bool | None) -> str:
    return "" if v is None else ("true" if v else "false")


def export_lines(session: Session, study: Study) -> Iterator[str]:
    """The export as CSV lines: a header, then one line per reading, in constant memory."""
    yield _csv_line([c for c, _, _ in columns(study)])
    latest = repo.revised(session, study.id)  # small: only answers that were revised
    flags = memorisation.study_flags(session, study.id)  # one entry per audited case image
    for row in repo.export_rows(session, study.id):
        r = row
        shown = row.shown_at
        values = [
            study.id,
            _text(study.title),
            row.pseudonym,
            row.years_experience,
            _text(row.specialty),
            _bool(row.board_certified),
            row.opaque_id,
            _text(row.name),
            _text(row.source_name),
            row.truth,
            r.verdict,
            _bool(r.verdict == row.truth if r.verdict else None),
            r.confidence,
            rating(r.verdict, r.confidence) if r.verdict else None,
            _bool(r.unreadable_reason is not None),
            r.unreadable_reason,
            _text(r.free_text),
            r.click_x,
            r.click_y,
            r.position,
            _bool(r.is_practice),
            r.presentation,
            r.revision,
            r.supersedes_id,
            r.id,
            _bool(r.revision == latest.get((row.reader_id, row.case_id, r.presentation), 0)),
            shown.isoformat() if shown else "",
            r.submitted_at.isoformat(),
            duration_ms(shown, r.submitted_at),
            r.client_active_ms,
            r.screen_w,
            r.screen_h,
            r.window_w,
            r.window_h,
            r.device_pixel_ratio,
            r.zoom_at_submit,
            _bool(r.one_to_one_reached),
            r.one_to_one_ms,
            _text(r.browser),
            _bool(flags.get(row.image_id)),
        ]
        values += [int(f in r.findings) for f in study.findings] if study.ask_findings else []
        # A set without a label schema (e.g. plain GAN samples) says nothing about findings: blank, not 0.
        values += [int(f in row.labels) if row.label_schema else "" for f in study.findings]
        yield _csv_line(["" if v is None else v for v in values])


def codebook_lines(study: Study) -> Iterator[str]:
    """The codebook CSV: column, type, definition; the first line states the positive class."""
    yield _csv_line(["column", "type", "definition"])
    yield _csv_line(["(note)", "", POSITIVE_CLASS_NOTE])
    for col in columns(study):
        yield _csv_line(list(col))


def _untext(v: str) -> str:
    """Undo _text: drop the quote that guards a formula-like cell."""
    return v[1:] if v.startswith("'") and v[1:].startswith(_FORMULA_START) else v


IMRMC_MODALITY = "realism"
EXPORT_NEEDS = (
    "reader_id",
    "case_id",
    "image_set",
    "truth",
    "verdict",
    "confidence",
    "position",
    "practice",
    "presentation",
    "is_latest",
    "duration_ms",
)


def reads_from_export(text: str) -> tuple[list[Read], list[str], bool]:
    """An export's analysis records (latest, non-practice rows), its findings, and whether marks were asked.

    Rows the analysis must not count (practice, superseded revisions) are skipped, as the codebook says.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in EXPORT_NEEDS if c not in header]
    if missing:
        raise ValueError(f"not a study export: the column(s) {', '.join(missing)} are missing")
    findings = [c[len("label_") :] for c in header if c.startswith("label_")]
    asked = any(c.startswith("marked_") for c in header)
    reads = []
    for line, row in enumerate(reader, start=2):
        if row["practice"] != "false" or row["is_latest"] != "true":
            continue
        try:
            # Exports made before unreadable flags existed have no such column: every row was answered.
            reason = _untext(row.get("unreadable_reason") or "") if row.get("unreadable") == "true" else None
            if reason is not None and reason not in UNREADABLE_LABELS:
                raise ValueError(f"unknown unreadable_reason {reason!r}")
            verdicts = ("real", "synthetic") if reason is None else ("",)
            if row["truth"] not in ("real", "synthetic") or row["verdict"] not in verdicts:
                raise ValueError("truth and verdict must be real or synthetic (blank verdict: unreadable)")
            labelled = [row[f"label_{f}"] for f in findings]
            reads.append(
                Read(
                    reader=row["reader_id"],
                    case=row["case_id"],
                    truth=row["truth"],
                    verdict=row["verdict"] or None,
                    confidence=int(row["confidence"]) if reason is None else None,
                    set_name=_untext(row["image_set"]),
                    findings=frozenset(f for f in findings if asked and row.get(f"marked_{f}") == "1"),
                    labels=None
                    if all(v == "" for v in labelled)
                    else frozenset(f for f, v in zip(findings, labelled, strict=True) if v == "1"),
                    position=int(row["position"]),
                    presentation=int(row["presentation"]),
                    duration_ms=int(row["duration_ms"]) if row["duration_ms"] else None,
                    unreadable_reason=reason,
                )
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"row {line}: {exc}") from None
    return reads, findings, asked


def imrmc_text(reads: list[Read], title: str) -> str:
    """The readings in iMRMC's input format: one modality, truth rows (reader -1), then 10-point scores.

    As in every figure, only first showings that were answered count: a test-retest repeat would give a
    reader two scores for one case, and a case flagged unreadable has none."""
    reads = counted(reads)
    cases = sorted({(r.case, r.truth) for r in reads})
    positives = sum(1 for _, truth in cases if truth == "synthetic")
    # iMRMC looks for "N0:", "NR:" ... in every header line: the title line carries no colon.
    description = " ".join(title.replace(":", " ").split()) or "study"
    lines = [
        f"{description} - CXR Realism Lab; positive = synthetic; score = 10-point rating of synthetic",
        f"N0:{len(cases) - positives}",
        f"N1:{positives}",
        f"NR:{len({r.reader for r in reads})}",
        "NM:1",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{case},truth,{int(truth == 'synthetic')}" for case, truth in cases]
    lines += [
        f"{r.reader},{r.case},{IMRMC_MODALITY},{rating(r.verdict, r.confidence)}"
        for r in sorted(reads, key=lambda r: (r.reader, r.case))
    ]
    return "\n".join(lines) + "\n"
