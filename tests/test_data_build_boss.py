"""`data build-boss`: BOSS's own preparation, byte for byte."""

import gzip
import io

import pytest

from lpft_nb.data.boss import build_boss
from lpft_nb.data.files import BOSS_FILES, RAW_FILES
from lpft_nb.data.tasks import DataError

CB_FILES = [f for f in RAW_FILES if f.path.startswith("superglue/CB/")]


def test_build_boss_reproduces_the_staged_files_byte_for_byte(data_dir, tmp_path):
    rows = build_boss(data_dir / "sources", tmp_path)
    assert rows == {
        "boss/SentimentAnalysis/dynasent/test.tsv": 4320,
        "boss/SentimentAnalysis/semeval/test.tsv": 20622,
        "boss/SentimentAnalysis/sst5/test.tsv": 1067,
        "boss/SentimentAnalysis/amazon/train.tsv": 12232,
        "boss/SentimentAnalysis/amazon/test.tsv": 2212,
    }
    for f in BOSS_FILES:
        assert (tmp_path / f.path).read_bytes() == (data_dir / f.path).read_bytes(), f.path


def test_build_boss_names_missing_sources_before_building(tmp_path):
    with pytest.raises(DataError, match=r"raw source file\(s\) missing: .*dynasent.*data download"):
        build_boss(tmp_path / "sources", tmp_path)
    assert not (tmp_path / "boss").exists()


def test_gzip_and_text_readers_agree_on_the_2014_file(data_dir):
    """The 2014 Amazon file is stored gzipped; BOSS's reader sees its decompressed lines."""
    path = data_dir / "sources/amazon_reviews_2014_5core/reviews_Musical_Instruments_5.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    assert len(lines) == 10261
    assert io.BytesIO(gzip.decompress(path.read_bytes())).read().count(b"\n") == 10261
