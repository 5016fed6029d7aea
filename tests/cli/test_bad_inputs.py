"""Every bad input: one clear line on stderr naming it, exit code 2, nothing marked complete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

import neurosel
from neurosel.cli import main
from tests.conftest import build_tiny_bert, random_texts


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["--quiet", *argv])
    err = capsys.readouterr().err.strip()
    return code, err


def extract_cli(capsys, data, model, out, *options: str) -> tuple[int, str]:
    return run_cli(capsys, "extract", str(data), "--model", str(model), "--out", str(out), *options)


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("neurosel: error: ")
    for needle in needles:
        assert needle in err, err


def test_missing_file(capsys, tiny_model, tmp_path):
    code, err = extract_cli(capsys, tmp_path / "nope.csv", tiny_model, tmp_path / "o.zarr")
    assert_one_line_error(code, err, "nope.csv", "no such file")
    assert not (tmp_path / "o.zarr").exists()


def test_unknown_column(capsys, tiny_model, tmp_path):
    data = write_csv(tmp_path / "d.csv", [("good movie", "1")])
    code, err = extract_cli(capsys, data, tiny_model, tmp_path / "o.zarr", "--text-column", "review")
    assert_one_line_error(code, err, "'review'", "--text-column", "text, label")


@pytest.mark.parametrize("bad", ["", "   \t "])
def test_empty_or_whitespace_text(capsys, tiny_model, tmp_path, bad):
    data = write_csv(tmp_path / "d.csv", [("good movie", "1"), (bad, "0")])
    code, err = extract_cli(capsys, data, tiny_model, tmp_path / "o.zarr")
    assert_one_line_error(code, err, "row 1", "empty or whitespace")


def test_non_utf8_file(capsys, tiny_model, tmp_path):
    data = tmp_path / "d.tsv"
    data.write_bytes("text\tlabel\ngood\t1\ncaf\u00e9 movie\t0\n".encode("latin-1"))
    code, err = extract_cli(capsys, data, tiny_model, tmp_path / "o.zarr")
    assert_one_line_error(code, err, "not valid UTF-8", "line 3", "iconv")


def test_labels_of_wrong_length(tiny_model, tmp_path):
    with pytest.raises(neurosel.InputError, match="3 labels for 2 texts"):
        neurosel.extract(["a", "b"], str(tiny_model), tmp_path / "o.zarr", labels=[0, 1, 1])
    assert not (tmp_path / "o.zarr").exists()


def test_model_that_cannot_be_loaded_offline(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = write_csv(tmp_path / "d.csv", [("good movie", "1")])
    code, err = extract_cli(capsys, data, "no-such-org/no-such-model", tmp_path / "o.zarr")
    assert_one_line_error(code, err, "no-such-org/no-such-model", "cannot be loaded", "local directory")
    assert not (tmp_path / "o.zarr").exists()


def test_out_is_a_store_of_another_configuration(capsys, tiny_model, tmp_path):
    data = write_csv(tmp_path / "d.csv", [("good movie", "1"), ("bad plot", "0")])
    out = str(tmp_path / "o.zarr")
    assert extract_cli(capsys, data, tiny_model, out)[0] == 0
    code, err = extract_cli(capsys, data, tiny_model, out, "--pooling", "cls")
    assert_one_line_error(code, err, "another configuration", "pooling='mean'", "'cls'", "--no-resume")
    assert neurosel.open_store(out).meta["pooling"] == "mean"


def test_out_is_a_foreign_directory(capsys, tiny_model, tmp_path):
    data = write_csv(tmp_path / "d.csv", [("good movie", "1")])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, err = extract_cli(capsys, data, tiny_model, tmp_path / "mine", "--no-resume")
    assert_one_line_error(code, err, "not a neurosel store")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_nonfinite_activations_are_counted_reported_and_not_complete(capsys, tmp_path):
    """A LayerNorm gain of 1e6 on two units overflows float16 in layer 0: a real fp16 overflow."""
    import torch
    from transformers import AutoModel

    model_dir = build_tiny_bert(tmp_path / "hot")
    net = AutoModel.from_pretrained(model_dir)
    with torch.no_grad():
        net.embeddings.LayerNorm.weight[:2] = 1e6
    net.save_pretrained(model_dir)
    data = write_csv(tmp_path / "d.csv", [(t, "1") for t in random_texts(5, seed=3)])
    out = str(tmp_path / "o.zarr")
    code, err = extract_cli(capsys, data, model_dir, out)
    assert_one_line_error(code, err, "non-finite", "rows 0, 1, 2, 3, 4", "--dtype float32")
    store = neurosel.open_store(out)
    assert not store.complete and store.rows_committed == 5
    assert store.meta["nonfinite_rows"] == [0, 1, 2, 3, 4]
    assert store.meta["nonfinite_values"] == int(np.sum(~np.isfinite(store.read())))
    code, _ = extract_cli(capsys, data, model_dir, out, "--allow-nonfinite")
    assert code == 0 and neurosel.open_store(out).complete


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB tmpfs (needs root and mount rights; skipped otherwise)."""
    small = tmp_path / "small"
    small.mkdir()
    if (
        shutil.which("mount") is None
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], capture_output=True
        ).returncode
    ):
        pytest.skip("cannot mount a small tmpfs here")
    yield small
    subprocess.run(["umount", str(small)], check=False)


def full_disk_run(tmp_path, small_disk, tiny_model, *extra):
    texts = random_texts(3000, seed=4)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    args = [
        "extract",
        str(data),
        "--model",
        str(tiny_model),
        "--out",
        str(small_disk / "o.zarr"),
        "--dtype",
        "float32",
        "--no-texts",
        *extra,
    ]
    return texts, args


def test_output_that_cannot_fit_is_refused_before_work(capsys, tiny_model, tmp_path, small_disk):
    _, args = full_disk_run(tmp_path, small_disk, tiny_model)
    code, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "need 1.2 MB", "free space or pass another --out")
    assert neurosel.open_store(small_disk / "o.zarr").rows_committed == 0


def test_disk_full_mid_run_is_reported_and_resumable(capsys, tiny_model, tmp_path, small_disk):
    """zstd output has no size known in advance: the disk really fills mid-run, then grows."""
    texts, args = full_disk_run(tmp_path, small_disk, tiny_model, "--compression", "zstd")
    code, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "disk full", "re-run the same command to resume")
    store = neurosel.open_store(small_disk / "o.zarr")
    assert not store.complete and store.rows_committed < store.n
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    assert run_cli(capsys, *args)[0] == 0
    resumed = neurosel.open_store(small_disk / "o.zarr")
    assert resumed.complete
    reference = neurosel.extract(
        texts, str(tiny_model), tmp_path / "ref.zarr", dtype="float32", store_texts=False, progress=False
    )
    np.testing.assert_array_equal(resumed.read(), reference.read())


def test_console_script_exit_code_and_single_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "neurosel.cli", "info", str(tmp_path / "missing.zarr")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"neurosel: error: store {tmp_path / 'missing.zarr'}: does not exist; run `neurosel extract` first"
    ]


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["extract", "x.csv"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_csv_field_over_the_csv_module_limit_is_read_whole(capsys, tiny_model, tmp_path):
    """A 200 KiB text is over Python's csv field limit (128 KiB); it is a valid (long) document."""
    from neurosel.extraction import load_corpus

    long_text = " ".join(["good movie"] * 20_000)
    assert len(long_text) > 200 * 1024
    data = write_csv(tmp_path / "d.csv", [(long_text, "1"), ("bad plot", "0")])
    corpus = load_corpus(data)
    assert corpus.texts == [long_text, "bad plot"]
    code, err = extract_cli(capsys, data, tiny_model, tmp_path / "o.zarr", "--max-length", "16")
    assert code == 0, err
    assert neurosel.open_store(tmp_path / "o.zarr").complete


@pytest.mark.parametrize("where", ["under a file", "a file"])
def test_extract_out_that_cannot_be_a_folder(capsys, tiny_model, tmp_path, where):
    data = write_csv(tmp_path / "d.csv", [("good movie", "1")])
    taken = tmp_path / "somefile.txt"
    taken.write_text("mine")
    out = taken / "store.zarr" if where == "under a file" else taken
    code, err = extract_cli(capsys, data, tiny_model, out)
    assert_one_line_error(code, err, "--out", str(out), "is a file")
    assert taken.read_text() == "mine"


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.safetensors"])
def test_model_whose_weights_cannot_be_unpickled(capsys, tmp_path, weights):
    """config.json and a tokenizer are fine, the weights file is garbage: torch.load's unpickler (or
    safetensors' header parser) refuses it."""
    model_dir = build_tiny_bert(tmp_path / "broken")
    (model_dir / "model.safetensors").unlink()
    (model_dir / weights).write_bytes(b"\x80\x04garbage, not a checkpoint" * 40)
    data = write_csv(tmp_path / "d.csv", [("good movie", "1")])
    code, err = extract_cli(capsys, data, model_dir, tmp_path / "o.zarr")
    assert_one_line_error(code, err, str(model_dir), "weights cannot be loaded", "download or save")
    assert not (tmp_path / "o.zarr").exists() or not neurosel.open_store(tmp_path / "o.zarr").complete


def test_store_whose_metadata_names_an_unknown_codec(capsys, tmp_path):
    store = neurosel.store_from_array(tmp_path / "s.zarr", np.ones((4, 2, 3), np.float32), labels=[0, 1] * 2)
    meta = Path(store.path) / "activations" / "zarr.json"
    text = meta.read_text()
    assert '"crc32c"' in text
    meta.write_text(text.replace('"crc32c"', '"nonexistent"'))
    # as a newer writer would leave it: the manifest records the metadata it wrote
    group = zarr.open_group(store.path, mode="r+", use_consolidated=False)
    manifest = dict(group.attrs["neurosel_manifest"])
    manifest["_metadata"] = {**manifest["_metadata"], "activations/zarr.json": [len(meta.read_bytes()),
                             neurosel.store._integrity.checksum(meta.read_bytes())]}  # fmt: skip
    group.attrs["neurosel_manifest"] = manifest
    with pytest.raises(neurosel.InputError, match="nonexistent"):
        neurosel.open_store(store.path)
    for argv in (["info", store.path], ["stats", store.path, "--device", "cpu"]):
        code, err = run_cli(capsys, *argv)
        assert_one_line_error(code, err, f"store {store.path}", "'activations'", "nonexistent", "re-run")


def test_a_hub_id_without_the_hub_fails_fast_in_one_line(tmp_path):
    """The hub unreachable (here: nothing listens at HF_ENDPOINT) and the model not cached: one line,
    in seconds, instead of the client's retries (~50 s and a dozen log lines)."""
    import time

    data = tmp_path / "in.csv"
    data.write_text("text,label\nhello world,0\nbad film,1\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "neurosel.cli", "-q", "extract", str(data), "--model", "someone/some-model",
         "--out", str(tmp_path / "s.zarr")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if "device=" not in line]
    assert len(lines) == 1 and "not in the Hugging Face cache" in lines[0], proc.stderr
    assert time.monotonic() - started < 30
