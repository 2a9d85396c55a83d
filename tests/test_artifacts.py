"""Copying artifacts when a run ends, and saving models: what is copied, what is
left out, how failures are told, and what a failure leaves behind.

Tests that could fill a disk work in a small tmpfs they mount themselves (the
suite runs as root, as CI does) and unmount afterwards.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

import pytest

import lab
from conftest import lab_cli, wait_background
from lab.experiment import Experiment, LabWarning


@contextmanager
def mounted(kind: List[str], target: Path) -> Iterator[Path]:
    """`mount <kind...> <target>`, unmounted on the way out."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", *kind, str(target)], check=True)
    try:
        yield target
    finally:
        if subprocess.run(["umount", str(target)]).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], check=True)
            raise AssertionError(f"{target} was busy at the end of the test")


@contextmanager
def tmpfs_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: str) -> Iterator[Path]:
    """A project folder that is a tmpfs of `size`: a disk that can fill up."""
    folder = tmp_path / "project"
    with mounted(["-t", "tmpfs", "-o", f"size={size}", "tmpfs"], folder):
        monkeypatch.chdir(folder)
        monkeypatch.setenv("LAB_PROJECT", str(folder))
        try:
            yield folder
        finally:
            wait_background()
            os.chdir(tmp_path)


def used_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def files_under(folder: Path) -> List[str]:
    return sorted(
        str((Path(root) / f).relative_to(folder)) for root, _, names in os.walk(folder) for f in names
    )


def dirs_under(folder: Path) -> List[str]:
    return sorted(str((Path(root) / d).relative_to(folder)) for root, names, _ in os.walk(folder) for d in names)


def end_with_warnings(e: Experiment, log) -> List[str]:
    """Runs `log(e)` in a run and returns the warnings its end issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with e.start_run():
            log(e)
    assert all(w.category is LabWarning for w in caught), [str(w.message) for w in caught]
    return [str(w.message) for w in caught]


# -- the project's own `.lab` ---------------------------------------------------


def test_logging_the_project_root_copies_the_project_without_lab(tmp_path, monkeypatch) -> None:
    with tmpfs_project(tmp_path, monkeypatch, "32m") as project:
        (project / "train.py").write_text("print('training')\n")
        (project / "data").mkdir()
        (project / "data" / "x.csv").write_bytes(b"1,2,3\n" * 20_000)
        (project / "deep" / "er").mkdir(parents=True)
        (project / "deep" / "er" / "y.txt").write_text("y")
        e = Experiment("root")
        began = time.monotonic()
        # Any warning fails the test (filterwarnings = error).
        with e.start_run():
            e.log_metric("loss", 0.5)
            e.log_artifact("code", ".")
        took = time.monotonic() - began
        wait_background()
        assert took < 20, f"ending the run took {took:.1f} s"
        run = lab.get_run(e.run_id)
        assert run.status == "finished"
        copied = Path(run.artifacts["code"])
        assert copied == Path(run.path) / "artifacts" / "code"
        assert files_under(copied) == ["data/x.csv", "deep/er/y.txt", "train.py"]
        assert ".lab" not in dirs_under(copied)
        # The project's files once more, the journal and the index: no copy of a copy.
        assert used_bytes(project) < 4 << 20, used_bytes(project)
        show = lab_cli(project, "show", e.run_id)
        assert "artifacts/code (3 file(s), 120.0 KB)" in show.stdout, show.stdout


def test_a_parent_of_the_project_is_copied_without_any_lab_store(tmp_path, monkeypatch) -> None:
    with tmpfs_project(tmp_path, monkeypatch, "32m") as outer:
        (outer / "notes.txt").write_text("outer")
        with Experiment("outer").start_run():
            pass
        inner = outer / "inner"
        inner.mkdir()
        (inner / "model.py").write_text("inner")
        # A second project inside the first, logging its parent: neither
        # project's `.lab` is copied.
        monkeypatch.setenv("LAB_PROJECT", str(inner))
        e = Experiment("inner")
        with e.start_run():
            e.log_artifact("all", outer)
        wait_background()
        run = lab.get_run(e.run_id)
        assert Path(run.path).parent.parent.parent == inner
        copied = Path(run.artifacts["all"])
        assert files_under(copied) == ["inner/model.py", "notes.txt"]
        assert dirs_under(copied) == ["inner"]


def test_lab_folders_are_refused_when_logged(project: Path) -> None:
    e = Experiment("own")
    with e.start_run():
        run_dir = Path(lab.get_run(e.run_id).path)
        (project / "alias").symlink_to(".lab")
        for path in [".lab", ".lab/runs", run_dir, "alias", "alias/runs"]:
            with pytest.raises(ValueError) as info:
                e.log_artifact("x", path)
            assert str(info.value).startswith(
                "`path` must not be a folder of Lab's own (a project's `.lab`, a folder inside it, or a run's folder): got "
            ), info.value
        (project / "ok.txt").write_text("ok")
        e.log_artifact("ok", "ok.txt")
    assert set(lab.get_run(e.run_id).artifacts) == {"ok"}


def test_links_and_bind_mounts_to_lab_folders_are_left_out(tmp_path, monkeypatch) -> None:
    with tmpfs_project(tmp_path, monkeypatch, "64m") as project:
        src = project / "src"
        src.mkdir()
        (src / "a.py").write_text("a")
        (src / "store").symlink_to(project / ".lab")
        (src / "runs").symlink_to("../.lab/runs")
        # Another project's store and some other run's folder.
        other = src / "other"
        (other / ".lab" / "runs").mkdir(parents=True)
        (other / ".lab" / "project.json").write_text("{}")
        (other / "x.txt").write_text("x")
        (src / "old_run").mkdir()
        (src / "old_run" / "journal.lab").write_bytes(b"LABJ")
        e = Experiment("binds")
        with e.start_run():  # makes the project's `.lab`
            pass
        (src / "bound").mkdir()
        with mounted(["--bind", str(project / ".lab")], src / "bound"):
            with e.start_run():
                e.log_artifact("src", "src")
        wait_background()
        copied = Path(lab.get_run(e.run_id).artifacts["src"])
        assert files_under(copied) == ["a.py", "other/x.txt"]
        assert dirs_under(copied) == ["other"]


# -- failures -------------------------------------------------------------------


def test_a_full_disk_names_the_cause_and_leaves_no_partial_copy(tmp_path, monkeypatch) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "small.txt").write_text("small")
    (big / "big.bin").write_bytes(os.urandom(17 << 20))
    (tmp_path / "fits.txt").write_text("fits")
    with tmpfs_project(tmp_path, monkeypatch, "16m") as project:
        e = Experiment("full")
        with pytest.warns(LabWarning) as caught:
            with e.start_run():
                e.log_artifact("fits", tmp_path / "fits.txt")
                e.log_artifact("big", big)
        messages = [str(w.message) for w in caught]
        assert len(messages) == 1, messages
        assert messages[0] == (
            f"artifact `big` was not copied: the disk is full while writing "
            f"{project}/.lab/runs/{e.run_id[:8]}/artifacts/big/big.bin"
        )
        wait_background()
        run = lab.get_run(e.run_id)
        assert run.status == "finished"
        assert set(run.artifacts) == {"fits"}
        assert os.listdir(Path(run.path) / "artifacts") == ["fits"]
        assert used_bytes(project) < 2 << 20, used_bytes(project)
        # The disk is usable again.
        with e.start_run():
            e.log_metric("after", 1)
        assert lab.get_run(e.run_id).status == "finished"


def test_a_vanished_source_says_it_was_removed(project: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("x")
    e = Experiment("vanished")
    with pytest.warns(LabWarning) as caught:
        with e.start_run():
            e.log_artifact("report", report)
            report.unlink()
    assert [str(w.message) for w in caught] == [
        f"artifact `report` was not copied: it was removed before the run ended: {report}"
    ]


def test_a_source_link_whose_target_vanished_says_so(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("x")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    e = Experiment("dangling")
    with pytest.warns(LabWarning) as caught:
        with e.start_run():
            e.log_artifact("link", link)
            target.unlink()
    assert [str(w.message) for w in caught] == [
        f"artifact `link` was not copied: it is a symbolic link to a missing file: {link}"
    ]
    assert lab.get_run(e.run_id).artifacts == {}


# -- symbolic links inside a folder --------------------------------------------


def test_a_dangling_link_in_a_folder_is_skipped_and_the_rest_copied(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "dead").symlink_to(tmp_path / "missing")
    e = Experiment("dead-link")
    messages = end_with_warnings(e, lambda e: e.log_artifact("logs", folder))
    assert messages == [f"artifact `logs`: skipped a symbolic link to a missing file: {folder}/dead"]
    copied = Path(lab.get_run(e.run_id).artifacts["logs"])
    assert files_under(copied) == ["a.txt"]


def test_links_to_folders_are_followed_and_loops_skipped(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.txt").write_text("o")
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "file_link").symlink_to(folder / "a.txt")
    (folder / "out").symlink_to(outside)
    (folder / "sub" / "up").symlink_to("..")
    (folder / "self").symlink_to("self")
    e = Experiment("loops")
    messages = end_with_warnings(e, lambda e: e.log_artifact("f", folder))
    assert sorted(messages) == [
        f"artifact `f`: skipped a symbolic link loop (a link to a folder that holds it): {folder}/sub/up",
        f"artifact `f`: skipped a symbolic link loop: {folder}/self",
    ]
    copied = Path(lab.get_run(e.run_id).artifacts["f"])
    assert files_under(copied) == ["a.txt", "file_link", "out/o.txt"]
    assert not (copied / "file_link").is_symlink()
    assert (copied / "file_link").read_text() == "a"


# -- sparse files ---------------------------------------------------------------


def _sparse(path: Path) -> bytes:
    data = os.urandom(4096)
    with open(path, "wb") as f:
        f.truncate(64 << 20)
        f.seek(32 << 20)
        f.write(data)
    assert os.stat(path).st_blocks * 512 <= 64 << 10
    return data


def _check_sparse_copy(copy: Path, data: bytes) -> None:
    st = os.stat(copy)
    assert st.st_size == 64 << 20
    assert st.st_blocks * 512 <= 1 << 20, f"{st.st_blocks * 512} bytes allocated"
    with open(copy, "rb") as f:
        f.seek(32 << 20)
        assert f.read(4096) == data
        f.seek((32 << 20) - 4096)
        assert f.read(4096) == bytes(4096)


def test_a_sparse_file_stays_sparse(project: Path, tmp_path: Path) -> None:
    src = tmp_path / "sparse.bin"
    data = _sparse(src)
    e = Experiment("sparse")
    with e.start_run():
        e.log_artifact("sparse", src)
    _check_sparse_copy(Path(lab.get_run(e.run_id).artifacts["sparse"]), data)


def test_a_sparse_file_fits_a_disk_smaller_than_its_size(tmp_path, monkeypatch) -> None:
    src = tmp_path / "sparse.bin"
    data = _sparse(src)
    with tmpfs_project(tmp_path, monkeypatch, "32m"):
        e = Experiment("sparse")
        with e.start_run():
            e.log_artifact("sparse", src)
        _check_sparse_copy(Path(lab.get_run(e.run_id).artifacts["sparse"]), data)


# -- a run removed while it is live ---------------------------------------------


def test_a_run_removed_while_live_is_not_brought_back_by_its_artifacts(project: Path) -> None:
    (project / "notes.txt").write_text("notes")
    e = Experiment("removed")
    with pytest.warns(LabWarning) as caught:
        with e.start_run():
            e.log_artifact("notes", "notes.txt")
            short = e.run_id[:8]
            rm = lab_cli(project, "rm", "--yes", "--force", short)
            assert rm.returncode == 0, rm.stderr
            with pytest.raises(lab.StorageError, match="was deleted while the run was live"):
                e.log_model("m", {"a": 1})
    run_dir = project / ".lab" / "runs" / short
    assert [str(w.message) for w in caught] == [
        f"artifact `notes` was not copied: the run's folder was deleted while the run was live (by `lab rm --force`?): {run_dir}"
    ]
    wait_background()
    assert not run_dir.exists()
    assert os.listdir(project / ".lab" / "runs") == []


# -- models ---------------------------------------------------------------------


def test_one_model_name_saved_from_many_threads_at_once(project: Path) -> None:
    e = Experiment("models")
    errors: List[BaseException] = []
    start = threading.Barrier(8)

    def save(t: int) -> None:
        start.wait()
        for i in range(20):
            try:
                e.log_model("m", {"thread": t, "i": i, "pad": "x" * 50_000})
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on
                errors.append(exc)

    with e.start_run():
        threads = [threading.Thread(target=save, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    run = lab.get_run(e.run_id)
    # The last call to record wins, and the file is the one its record describes.
    loaded = lab.load_model(run, "m")
    assert loaded["i"] == 19
    assert os.listdir(Path(run.path) / "models") == [Path(run.models["m"]["path"]).name]
