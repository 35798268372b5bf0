"""Pseudonyms of outside ids: keyed, stable, recognisable, never applied twice."""

from __future__ import annotations

import hashlib

from app.domain.identities import is_pseudonym, pseudonym

KEY, OTHER = b"k" * 32, b"o" * 32


def test_a_pseudonym_is_stable_under_one_key_and_differs_under_another():
    first = pseudonym("patient", "MRN-123456", key=KEY)
    assert first == pseudonym("patient", " MRN-123456 ", key=KEY)
    assert first != pseudonym("patient", "MRN-123456", key=OTHER)
    assert first.startswith("pid_") and len(first) == 4 + 24 and is_pseudonym(first)


def test_kinds_do_not_collide_and_the_unkeyed_hash_is_not_what_is_stored():
    patient, study = pseudonym("patient", "42", key=KEY), pseudonym("study", "42", key=KEY)
    assert patient[4:] != study[4:]
    # A plain hash of a guessable id would let anyone test guesses against the stored value.
    assert hashlib.sha256(b"42").hexdigest()[:24] not in (patient[4:], study[4:])


def test_blank_stays_none_and_a_pseudonym_stays_itself():
    assert pseudonym("patient", None, key=KEY) is None and pseudonym("study", "  ", key=KEY) is None
    already = pseudonym("instance", "1.2.3", key=KEY)
    assert pseudonym("instance", already, key=OTHER) == already
    assert not is_pseudonym("pid_" + "g" * 24) and not is_pseudonym("pid_abc")


def test_the_command_prints_the_pseudonym_the_app_stores():
    from click.testing import CliRunner

    from app.cli.main import cli

    out = CliRunner().invoke(cli, ["images", "pseudonym", "--kind", "patient", "MRN-1", "MRN-2"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [f"MRN-{n}\t{pseudonym('patient', f'MRN-{n}')}" for n in (1, 2)]
