"""`data download`: mirror and official modes, pinned hashes, no partial files, retries."""

import gzip
import zipfile
from pathlib import Path

import pytest
from data_server import files_under, serve

from lpft_nb.cli import main
from lpft_nb.data import download as dl
from lpft_nb.data.check import check_folder
from lpft_nb.data.download import DownloadError, download
from lpft_nb.data.files import BOSS_FILES, PINNED, RAW_FILES, SST2_FILES, Remote, sha256_of

CB_FILES = [f for f in RAW_FILES if f.path.startswith("superglue/CB/")]


def test_mirror_download_verifies_builds_and_skips_what_is_present(data_dir, tmp_path, capsys):
    to = tmp_path / "data"
    with serve(data_dir) as (url, handler):
        assert main(["data", "download", "--to", str(to), "--mirror", url, "--quiet"]) == 0
        first = capsys.readouterr().out
        assert first.count("downloaded (sha256 ✓)") == len(RAW_FILES)
        assert first.count("= pinned sha256") == len(BOSS_FILES) + len(SST2_FILES)
        for f in (*RAW_FILES, *BOSS_FILES):
            assert (to / f.path).read_bytes() == (data_dir / f.path).read_bytes(), f.path
        served = len(handler.requests)
        assert main(["data", "download", "--to", str(to), "--mirror", url, "--quiet"]) == 0
        assert len(handler.requests) == served, "verified files must not be fetched again"
        present = capsys.readouterr().out.count("present (sha256 ✓)")
        assert present == len(RAW_FILES) + len(BOSS_FILES) + len(SST2_FILES)
    rows, _ = check_folder(to)
    assert not [r for r in rows if r.problem]


def test_a_corrupt_file_is_an_error_naming_it_and_nothing_is_written(data_dir, tmp_path):
    to = tmp_path / "data"
    with serve(data_dir, corrupt={"superglue/CB/train.jsonl"}) as (url, _):
        with pytest.raises(DownloadError, match=r"superglue/CB/train.jsonl.*sha256"):
            download(to, mirror=url, retries=0, progress=False, files=CB_FILES)
    assert not (to / "superglue/CB/train.jsonl").exists()
    assert files_under(to) == [], "no temporary or partial file may remain"


def test_a_dropped_connection_leaves_no_partial_file_and_a_second_run_succeeds(data_dir, tmp_path):
    to = tmp_path / "data"
    target = "superglue/CB/val.jsonl"
    with serve(data_dir, drop_once={target}) as (url, handler):
        with pytest.raises(DownloadError, match=r"superglue/CB/val.jsonl.*failed after 1 attempt"):
            download(to, mirror=url, retries=0, progress=False, files=CB_FILES)
        assert not (to / target).exists()
        assert [p for p in files_under(to) if "val" in p] == []
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
    return (
        Remote(
            "CB",
            f"{url}/CB.zip",
            "zip",
            tuple((f"CB/{s}.jsonl", f"superglue/CB/{s}.jsonl") for s in ("train", "val", "test")),
        ),
        Remote(
            "beauty",
            f"{url}/All_Beauty_5.json.gz",
            "gzip",
            (("", "sources/amazon_reviews_2018_5core/All_Beauty_5.json"),),
        ),
    )


def test_official_mode_takes_pinned_files_out_of_archives(data_dir, tmp_path, monkeypatch):
    _official_like_site(data_dir, tmp_path / "site")
    beauty = PINNED["sources/amazon_reviews_2018_5core/All_Beauty_5.json"]
    with serve(tmp_path / "site") as (url, _):
        remotes = _local_remotes(url)
        monkeypatch.setattr(dl, "REMOTES", remotes)
        monkeypatch.setattr(
            dl, "remote_of", lambda p: next(r for r in remotes if any(t == p for _, t in r.members))
        )
        download(tmp_path / "data", progress=False, files=[*CB_FILES, beauty])
    for f in (*CB_FILES, beauty):
        assert sha256_of(tmp_path / "data" / f.path) == f.sha256
    assert not (tmp_path / "data" / dl.DOWNLOADS).exists(), "archives are removed once their files are out"


def test_official_mode_rejects_an_archive_member_that_differs_from_its_pin(data_dir, tmp_path, monkeypatch):
    _official_like_site(data_dir, tmp_path / "site", bad_member=True)
    with serve(tmp_path / "site") as (url, _):
        remotes = _local_remotes(url)
        monkeypatch.setattr(dl, "REMOTES", remotes)
        monkeypatch.setattr(
            dl, "remote_of", lambda p: next(r for r in remotes if any(t == p for _, t in r.members))
        )
        with pytest.raises(
            DownloadError, match=r"superglue/CB/val.jsonl: taken from .*CB.zip.*differs from the pinned"
        ):
            download(tmp_path / "data", progress=False, files=CB_FILES)
    assert not (tmp_path / "data/superglue/CB/val.jsonl").exists()
    assert not [p for p in files_under(tmp_path / "data") if p.endswith(".part") or "CB.zip" in p]
