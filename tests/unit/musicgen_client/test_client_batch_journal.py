"""The batch journal survives a kill at any byte and forgets what was collected."""

from __future__ import annotations

from musicgen_client.batch_journal import BatchJournal, InFlight, journal_path, read_in_flight
from musicgen_client.client import Submission


def _submission(inference_id: str) -> Submission:
    return Submission(
        inference_id=inference_id,
        input_location=f"s3://b/async-input/{inference_id}.json",
        output_location=f"s3://b/async-output/{inference_id}.out",
        failure_location=f"s3://b/async-failure/{inference_id}-error.out",
        submitted_at=1_700_000_000.0,
        request_ttl_seconds=21600,
        invocation_timeout_seconds=3600,
    )


def test_in_flight_until_finished(tmp_path):
    path = journal_path(tmp_path, "prompts")
    assert path.name == ".prompts.musicgen-batch.jsonl"
    journal = BatchJournal(path, [])
    journal.submitted(InFlight(1, "d1", _submission("one")))
    journal.submitted(InFlight(2, "d2", _submission("two")))
    journal.finished(1, "one")
    journal.close()
    assert read_in_flight(path) == {2: InFlight(2, "d2", _submission("two"))}


def test_a_torn_last_line_is_ignored(tmp_path):
    path = journal_path(tmp_path, "prompts")
    journal = BatchJournal(path, [])
    journal.submitted(InFlight(1, "d1", _submission("one")))
    journal.submitted(InFlight(2, "d2", _submission("two")))
    journal.close()
    text = path.read_bytes()
    path.write_bytes(text[: len(text) - 25])
    assert list(read_in_flight(path)) == [1]


def test_a_finish_of_an_older_submission_does_not_hide_a_newer_one(tmp_path):
    path = journal_path(tmp_path, "prompts")
    journal = BatchJournal(path, [])
    journal.submitted(InFlight(1, "d1", _submission("old")))
    journal.submitted(InFlight(1, "d1", _submission("new")))
    journal.finished(1, "old")
    journal.close()
    assert read_in_flight(path)[1].submission.inference_id == "new"


def test_opening_compacts_to_what_is_still_in_flight(tmp_path):
    path = journal_path(tmp_path, "prompts")
    journal = BatchJournal(path, [])
    for number in range(1, 6):
        journal.submitted(InFlight(number, f"d{number}", _submission(f"id{number}")))
    journal.close()
    kept = [entry for entry in read_in_flight(path).values() if entry.line in (2, 4)]
    BatchJournal(path, kept).close()
    assert len(path.read_text().splitlines()) == 2
    assert sorted(read_in_flight(path)) == [2, 4]


def test_missing_and_hand_edited_journals(tmp_path):
    path = journal_path(tmp_path, "prompts")
    assert read_in_flight(path) == {}
    path.write_text('{"event": "submitted", "line": 1}\nnot json\n{"event": "other", "line": 2}\n')
    assert read_in_flight(path) == {}
