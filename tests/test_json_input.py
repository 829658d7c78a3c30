"""Every JSON file fastvmt reads is bounded: too large, not UTF-8, too deeply nested or not a regular file is one
ValueError naming the file, never a RecursionError, a hang or an out-of-memory."""

import json
import os

import pytest

from fastvmt import json_input
from fastvmt.backbones.checkpoint import read_config
from fastvmt.batch.manifest import ManifestError, read_manifest
from fastvmt.cli.errors import parse_overrides
from fastvmt.evaluation.davis import read_captions
from fastvmt.transfer_run import replay_options

#: Deeper than Python's recursion limit allows json to parse.
DEEP = "[" * 100_000 + "]" * 100_000
#: Every reader of a JSON file a user or a checkpoint gives.
READERS = {"manifest": read_manifest, "sidecar (--config)": replay_options, "checkpoint config": read_config,
           "captions": read_captions}


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(json_input, "MAX_JSON_BYTES", 1024)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
@pytest.mark.parametrize("content", [DEEP.encode(), b"\xff\xfe{}", b"{" + b" " * 4096 + b"}"],
                         ids=["deeply nested", "not UTF-8", "too large"])
def test_a_hostile_json_file_is_one_value_error_naming_it(tmp_path, small_limit, reader, content):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="metrics.jsonl"):
        reader(path)


def test_a_manifest_line_nested_too_deeply_is_reported_with_its_number(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"")
    good = json.dumps({"reference": "clip.mp4", "prompt": "a fox"})
    path = tmp_path / "jobs.jsonl"
    path.write_text(f"{good}\n{DEEP}\n")
    with pytest.raises(ManifestError, match=r"line 2: JSON nested too deeply"):
        read_manifest(path)


def test_a_special_file_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "jobs.jsonl"
    os.mkfifo(fifo)  # reading it would block forever
    with pytest.raises(ValueError, match="jobs.jsonl' is not a regular file"):
        json_input.read_json(fifo, "manifest")


def test_set_values_are_json_when_they_parse_and_text_otherwise():
    assert parse_overrides(["extractor.window=11", "name=fast", "tile=[3, 4]"]) == {
        "extractor.window": 11, "name": "fast", "tile": (3, 4)}
    with pytest.raises(ValueError, match="--set loss.lambda_win: JSON nested too deeply"):
        parse_overrides([f"loss.lambda_win={DEEP}"])
