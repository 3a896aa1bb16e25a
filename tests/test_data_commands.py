"""`data download | build-boss | check` and the book's data step, against a local HTTP server (never the internet).

The server serves a folder over 127.0.0.1 and can corrupt a file's bytes or drop the connection half-way
through a file, to test that a failed download leaves nothing at the data path.
"""

import gzip
import http.server
import io
import shutil
import socket
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from lpft_nb.cli import main
from lpft_nb.data import download as dl
from lpft_nb.data.boss import build_boss
from lpft_nb.data.check import check_folder, format_report
from lpft_nb.data.download import DownloadError, download, ensure_book_data
from lpft_nb.data.files import BOOK_FILES, BOSS_FILES, PINNED, RAW_FILES, Remote, sha256_of
from lpft_nb.data.tasks import DataError

CB_FILES = [f for f in RAW_FILES if f.path.startswith("superglue/CB/")]


class _Handler(http.server.SimpleHTTPRequestHandler):
    corrupt: set = set()  # paths served with one byte changed
    drop_once: set = set()  # paths whose first request is cut off half-way
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.lstrip("/")
        type(self).requests.append(path)
        if path in self.corrupt or path in self.drop_once:
            data = Path(self.directory, path).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if path in self.drop_once:
                self.drop_once.discard(path)
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(bytes([data[0] ^ 1]) + data[1:])
            return
        super().do_GET()


@contextmanager
def serve(directory: Path, corrupt=(), drop_once=()):
    """An HTTP server on 127.0.0.1 (free port) serving `directory`; yields its base URL."""
    handler = type("Handler", (_Handler,), {"corrupt": set(corrupt), "drop_once": set(drop_once), "requests": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(directory), **k))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_mirror_download_verifies_builds_and_skips_what_is_present(data_dir, tmp_path, capsys):
    to = tmp_path / "data"
    with serve(data_dir) as (url, handler):
        assert main(["data", "download", "--to", str(to), "--mirror", url, "--quiet"]) == 0
        first = capsys.readouterr().out
        assert first.count("downloaded (sha256 ✓)") == len(RAW_FILES)
        assert first.count("= pinned sha256") == len(BOSS_FILES)
        for f in (*RAW_FILES, *BOSS_FILES):
            assert (to / f.path).read_bytes() == (data_dir / f.path).read_bytes(), f.path
        served = len(handler.requests)
        assert main(["data", "download", "--to", str(to), "--mirror", url, "--quiet"]) == 0
        assert len(handler.requests) == served, "verified files must not be fetched again"
        assert capsys.readouterr().out.count("present (sha256 ✓)") == len(RAW_FILES) + len(BOSS_FILES)
    rows, _ = check_folder(to)
    assert not [r for r in rows if r.problem]


def test_a_corrupt_file_is_an_error_naming_it_and_nothing_is_written(data_dir, tmp_path):
    to = tmp_path / "data"
    with serve(data_dir, corrupt={"superglue/CB/train.jsonl"}) as (url, _):
        with pytest.raises(DownloadError, match=r"superglue/CB/train.jsonl.*sha256"):
            download(to, mirror=url, retries=0, progress=False, files=CB_FILES)
    assert not (to / "superglue/CB/train.jsonl").exists()
    assert _files_under(to) == [], "no temporary or partial file may remain"


def test_a_dropped_connection_leaves_no_partial_file_and_a_second_run_succeeds(data_dir, tmp_path):
    to = tmp_path / "data"
    target = "superglue/CB/val.jsonl"
    with serve(data_dir, drop_once={target}) as (url, handler):
        with pytest.raises(DownloadError, match=r"superglue/CB/val.jsonl.*failed after 1 attempt"):
            download(to, mirror=url, retries=0, progress=False, files=CB_FILES)
        assert not (to / target).exists()
        assert [p for p in _files_under(to) if "val" in p] == []
        report = download(to, mirror=url, retries=0, progress=False, files=CB_FILES)
    assert dict(report)[target] == "downloaded (sha256 ✓)"
    assert sha256_of(to / target) == PINNED[target].sha256


def test_retries_recover_from_a_dropped_connection_within_one_run(data_dir, tmp_path):
    with serve(data_dir, drop_once={"superglue/CB/val.jsonl"}) as (url, handler):
        download(tmp_path, mirror=url, retries=1, progress=False, files=CB_FILES)
        assert handler.requests.count("superglue/CB/val.jsonl") == 2
    assert sha256_of(tmp_path / "superglue/CB/val.jsonl") == PINNED["superglue/CB/val.jsonl"].sha256


def _official_like_site(data_dir: Path, site: Path, bad_member: bool = False) -> None:
    """Archives laid out as the official hosts publish them: CB.zip with CB/*.jsonl, one .json.gz file."""
    site.mkdir()
    with zipfile.ZipFile(site / "CB.zip", "w") as zf:
        for f in CB_FILES:
            data = (data_dir / f.path).read_bytes()
            zf.writestr(f"CB/{Path(f.path).name}", data + (b" " if bad_member and "val" in f.path else b""))
        zf.writestr("__MACOSX/CB/._train.jsonl", b"junk")
    beauty = "sources/amazon_reviews_2018_5core/All_Beauty_5.json"
    (site / "All_Beauty_5.json.gz").write_bytes(gzip.compress((data_dir / beauty).read_bytes()))


def _local_remotes(url: str) -> tuple[Remote, ...]:
    return (Remote("CB", f"{url}/CB.zip", "zip",
                   tuple((f"CB/{s}.jsonl", f"superglue/CB/{s}.jsonl") for s in ("train", "val", "test"))),
            Remote("beauty", f"{url}/All_Beauty_5.json.gz", "gzip",
                   (("", "sources/amazon_reviews_2018_5core/All_Beauty_5.json"),)))


def test_official_mode_takes_pinned_files_out_of_archives(data_dir, tmp_path, monkeypatch):
    _official_like_site(data_dir, tmp_path / "site")
    beauty = PINNED["sources/amazon_reviews_2018_5core/All_Beauty_5.json"]
    with serve(tmp_path / "site") as (url, _):
        remotes = _local_remotes(url)
        monkeypatch.setattr(dl, "REMOTES", remotes)
        monkeypatch.setattr(dl, "remote_of", lambda p: next(r for r in remotes if any(t == p for _, t in r.members)))
        download(tmp_path / "data", progress=False, files=[*CB_FILES, beauty])
    for f in (*CB_FILES, beauty):
        assert sha256_of(tmp_path / "data" / f.path) == f.sha256
    assert not (tmp_path / "data" / dl.DOWNLOADS).exists(), "archives are removed once their files are out"


def test_official_mode_rejects_an_archive_member_that_differs_from_its_pin(data_dir, tmp_path, monkeypatch):
    _official_like_site(data_dir, tmp_path / "site", bad_member=True)
    with serve(tmp_path / "site") as (url, _):
        remotes = _local_remotes(url)
        monkeypatch.setattr(dl, "REMOTES", remotes)
        monkeypatch.setattr(dl, "remote_of", lambda p: next(r for r in remotes if any(t == p for _, t in r.members)))
        with pytest.raises(DownloadError, match=r"superglue/CB/val.jsonl: taken from .*CB.zip.*differs from the pinned"):
            download(tmp_path / "data", progress=False, files=CB_FILES)
    assert not (tmp_path / "data/superglue/CB/val.jsonl").exists()
    assert not [p for p in _files_under(tmp_path / "data") if p.endswith(".part") or "CB.zip" in p]


def test_build_boss_reproduces_the_staged_files_byte_for_byte(data_dir, tmp_path):
    rows = build_boss(data_dir / "sources", tmp_path)
    assert rows == {"boss/SentimentAnalysis/dynasent/test.tsv": 4320, "boss/SentimentAnalysis/semeval/test.tsv": 20622,
                    "boss/SentimentAnalysis/sst5/test.tsv": 1067, "boss/SentimentAnalysis/amazon/train.tsv": 12232,
                    "boss/SentimentAnalysis/amazon/test.tsv": 2212}
    for f in BOSS_FILES:
        assert (tmp_path / f.path).read_bytes() == (data_dir / f.path).read_bytes(), f.path


def test_build_boss_names_missing_sources_before_building(tmp_path):
    with pytest.raises(DataError, match=r"raw source file\(s\) missing: .*dynasent.*data download"):
        build_boss(tmp_path / "sources", tmp_path)
    assert not (tmp_path / "boss").exists()


def _book_copy(data_dir: Path, to: Path) -> Path:
    for e in BOOK_FILES:
        (to / e.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / e.path, to / e.path)
    return to


def test_check_passes_on_the_shared_folder(data_dir):
    rows, notes = check_folder(data_dir)
    assert [r.path for r in rows if r.problem] == []
    assert len(rows) == len(BOOK_FILES) + sum(f.path.startswith("sources/") for f in RAW_FILES)


def test_check_reports_a_removed_file_and_a_corrupted_line(data_dir, tmp_path, capsys):
    folder = _book_copy(data_dir, tmp_path / "data")
    (folder / "superglue/RTE/val.jsonl").unlink()
    lines = (folder / "superglue/CB/train.jsonl").read_text().splitlines(keepends=True)
    lines[6] = lines[6][: len(lines[6]) // 2] + "\n"
    (folder / "superglue/CB/train.jsonl").write_text("".join(lines))
    assert main(["data", "check", str(folder)]) == 1
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 2, out
    assert "superglue/CB/train.jsonl: malformed:" in problems[0] and "train.jsonl:7: not valid JSON" in problems[0]
    assert "fix: python -m lpft_nb data download --to" in problems[0]
    assert "superglue/RTE/val.jsonl: missing" in problems[1]
    assert "no sources/ folder: the book does not need it" in out
    assert out.rstrip().endswith("2 problem(s)")


def test_check_reports_wrong_class_counts_with_the_build_command(data_dir, tmp_path):
    folder = _book_copy(data_dir, tmp_path / "data")
    path = folder / "boss/SentimentAnalysis/sst5/test.tsv"
    text = path.read_text()
    last_label = int(text.rstrip("\n").rsplit("\t", 1)[1])
    path.write_text(text[: text.rindex("\t")] + f"\t{(last_label + 1) % 3}\n")  # the last row's label changed
    rows, notes = check_folder(folder)
    (bad,) = [r for r in rows if r.problem]
    assert bad.path.endswith("sst5/test.tsv") and "class counts differ" in bad.problem
    assert "contents differ from the pinned file" in bad.problem and "build-boss" in bad.fix
    assert "sst5/test.tsv: class counts differ" in format_report(folder, rows, notes)


# ---- the book's data step ---------------------------------------------------------------------------
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
    monkeypatch.setattr(dl, "network_reachable", lambda url: pytest.fail("a verified folder needs no network"))
    assert ensure_book_data(progress=False) == folder


def test_data_command_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "absent")]) == 2
    assert main(["data", "download", "--to", str(tmp_path), "--retries", "-1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not found" in err[0] and "--retries must be ≥ 0" in err[1]


def test_gzip_and_text_readers_agree_on_the_2014_file(data_dir):
    """The 2014 Amazon file is stored gzipped; BOSS's reader sees its decompressed lines."""
    path = data_dir / "sources/amazon_reviews_2014_5core/reviews_Musical_Instruments_5.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    assert len(lines) == 10261
    assert io.BytesIO(gzip.decompress(path.read_bytes())).read().count(b"\n") == 10261
