"""`data check`: one table of files, rows, classes and hashes; every problem with its fix."""

import shutil
from pathlib import Path

from lpft_nb.cli import main
from lpft_nb.data.check import check_folder, format_report
from lpft_nb.data.files import BOOK_FILES, RAW_FILES, SST2_SPLITS

CB_FILES = [f for f in RAW_FILES if f.path.startswith("superglue/CB/")]


def _book_copy(data_dir: Path, to: Path) -> Path:
    for e in BOOK_FILES:
        (to / e.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / e.path, to / e.path)
    return to


def test_check_passes_on_the_shared_folder(data_dir):
    rows, notes = check_folder(data_dir)
    assert [r.path for r in rows if r.problem] == []
    raw_sources = sum(f.path.startswith("sources/") for f in RAW_FILES)
    assert len(rows) == len(BOOK_FILES) + raw_sources + len(SST2_SPLITS)


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
    assert (
        "superglue/CB/train.jsonl: malformed:" in problems[0]
        and "train.jsonl:7: not valid JSON" in problems[0]
    )
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


def test_data_command_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "absent")]) == 2
    assert main(["data", "download", "--to", str(tmp_path), "--retries", "-1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not found" in err[0] and "--retries must be ≥ 0" in err[1]
