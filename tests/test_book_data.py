"""The book's data step: a given folder, a folder that lacks files, offline, and fetch + build."""

import socket
import time

import pytest
from data_server import serve

from lpft_nb.cli import main
from lpft_nb.data import download as dl
from lpft_nb.data.check import check_folder
from lpft_nb.data.download import ensure_book_data
from lpft_nb.data.files import RAW_FILES
from lpft_nb.data.tasks import DataError

CB_FILES = [f for f in RAW_FILES if f.path.startswith("superglue/CB/")]


def test_book_uses_the_folder_it_is_given_without_the_network(data_dir, monkeypatch):
    monkeypatch.setenv("LPFT_DATA_DIR", str(data_dir))
    monkeypatch.setattr(dl, "network_reachable", lambda url: pytest.fail("no network when a folder is given"))
    assert ensure_book_data(progress=False) == data_dir


def test_book_names_what_a_given_folder_lacks(tmp_path, monkeypatch):
    monkeypatch.setenv("LPFT_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"lacks superglue/CB/train.jsonl and \d+ more.*data download --to"):
        ensure_book_data(progress=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_book_offline_without_a_folder_stops_at_once_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LPFT_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(dl.MIRROR_ENV, f"http://127.0.0.1:{_closed_port()}")
    start = time.perf_counter()
    assert main(["book", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert time.perf_counter() - start < 10
    assert len(err.splitlines()) == 1 and err.startswith("error: no data folder: LPFT_DATA_DIR is not set")
    assert "cannot be reached" in err and "python -m lpft_nb data download" in err
    assert not (tmp_path / "cache" / "lpft-book" / "data" / "superglue").exists()


def test_book_without_a_folder_fetches_and_builds_the_data(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("LPFT_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with serve(data_dir) as (url, _):
        monkeypatch.setenv(dl.MIRROR_ENV, url)
        folder = ensure_book_data(progress=False)
    assert folder == tmp_path / "cache" / "lpft-book" / "data"
    assert [r.path for r in check_folder(folder)[0] if r.problem] == []
    monkeypatch.setattr(
        dl, "network_reachable", lambda url: pytest.fail("a verified folder needs no network")
    )
    assert ensure_book_data(progress=False) == folder
