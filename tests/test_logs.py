"""Console capture: what a run prints, recorded through fds 1 and 2 while the
terminal behaves as before; `lab logs`, `Run.logs()`."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import lab
from conftest import lab_cli, lab_env, run_python, wait_background

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fd capture is Unix only")


def only_run(project: Path) -> lab.Run:
    runs = lab.runs()
    assert len(runs) == 1, runs
    return runs[0]


def test_python_and_c_output_on_both_streams_is_recorded_and_still_shown(project: Path) -> None:
    proc = run_python(
        project,
        """
        import ctypes, os, sys, lab
        e = lab.Experiment("t")
        print("before the run")
        with e.start_run():
            print("print to stdout")
            print("print to stderr", file=sys.stderr)
            os.write(1, b"os.write to 1\\n")
            os.write(2, b"os.write to 2\\n")
            libc = ctypes.CDLL(None)
            libc.puts(b"libc puts")
            libc.fflush(None)
            libc.dprintf(2, b"libc dprintf %d\\n", 42)
            print("isatty", os.isatty(1), os.isatty(2), sys.stdout.isatty())
        print("after the run")
        """,
        check=True,
    )
    # The terminal (here a pipe) got everything, in order per stream.
    assert proc.stdout.splitlines() == [
        "before the run",
        "print to stdout",
        "os.write to 1",
        "libc puts",
        "isatty False False False",
        "after the run",
    ]
    assert proc.stderr.splitlines()[-3:] == ["print to stderr", "os.write to 2", "libc dprintf 42"]
    run = only_run(project)
    got = run.logs(lines=True)
    assert [(line.stream, line.text) for line in got if line.stream == "stdout"] == [
        ("stdout", "print to stdout"),
        ("stdout", "os.write to 1"),
        ("stdout", "libc puts"),
        ("stdout", "isatty False False False"),
    ]
    assert [line.text for line in got if line.stream == "stderr"] == [
        "print to stderr",
        "os.write to 2",
        "libc dprintf 42",
    ]
    assert all(run.start_time.timestamp() - 1 <= line.time <= run.end_time.timestamp() + 1 for line in got)
    assert run.logs(stream="stderr") == "print to stderr\nos.write to 2\nlibc dprintf 42\n"
    assert "before the run" not in run.logs() and "after the run" not in run.logs()

    out = lab_cli(project, "logs", run.short_id)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [line.text for line in got]
    err = lab_cli(project, "logs", run.short_id, "--stderr")
    assert err.stdout == "print to stderr\nos.write to 2\nlibc dprintf 42\n"
    grep = lab_cli(project, "logs", run.short_id, "--grep", "libc")
    # In the order of the lines' times: two streams read by two threads may
    # stamp lines written a microsecond apart either way.
    assert grep.stdout.splitlines() == [line.text for line in got if "libc" in line.text]
    assert sorted(grep.stdout.splitlines()) == ["libc dprintf 42", "libc puts"]
    stamped = lab_cli(project, "logs", run.short_id, "-t", "--grep", "puts")
    assert stamped.stdout.endswith("Z libc puts\n") and stamped.stdout.startswith("20")


def test_bad_arguments_are_refused_with_their_names(project: Path) -> None:
    with pytest.raises(TypeError, match="`capture` must be True or False"):
        lab.Experiment("t", capture="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`capture_limit` must be a number of bytes"):
        lab.Experiment("t", capture_limit=-1)
    proc = run_python(
        project,
        """
        import os, lab
        os.environ["LAB_CAPTURE_LIMIT"] = "lots"
        with lab.Experiment("t").start_run():
            pass
        """,
    )
    assert proc.returncode == 1
    assert "`LAB_CAPTURE_LIMIT` must be a number of bytes: got 'lots'" in proc.stderr
    # Refused before the run started: there is no run, not even a project.
    assert not (project / ".lab").exists()
    with pytest.raises(ValueError, match="`stream` must be None, 'stdout' or 'stderr'"):
        lab.Run.logs(None, stream="both")  # type: ignore[arg-type]
    run_python(project, "import lab\nwith lab.Experiment('t').start_run(): pass\n", check=True)
    missing = lab_cli(project, "logs", "ffffffff")
    assert missing.returncode == 1 and "ffffffff" in missing.stderr


def run_in_terminal(project: Path, code: str, env: dict | None = None, timeout: float = 60) -> tuple[int, bytes]:
    """Runs `code` with fds 1 and 2 on a new pseudo-terminal of 33 rows and
    101 columns; returns its exit status and everything it wrote."""
    import fcntl
    import pty
    import struct
    import termios

    script = project / "script.py"
    script.write_text(textwrap.dedent(code))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=project,
        env=env or lab_env(project),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every copy of the slave is closed
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=10), bytes(out)


TERMINAL_FACTS = """
    import os, shutil, sys, termios
    def facts(tag):
        attrs = termios.tcgetattr(1)
        print(tag, os.isatty(1), os.isatty(2), sys.stdout.isatty(), os.get_terminal_size(1),
              os.get_terminal_size(2), attrs[:4], flush=True)
"""


def test_a_terminal_stays_a_terminal_with_its_settings_and_size(project: Path) -> None:
    status, out = run_in_terminal(
        project,
        TERMINAL_FACTS
        + """
    import lab
    facts("outside")
    with lab.Experiment("t").start_run():
        facts("inside")
        print("\\x1b[31mred\\x1b[0m plain")
        for i in range(101):
            sys.stdout.write(f"\\r{i:3d}% [{'#' * (i // 10):<10}]")
            sys.stdout.flush()
        sys.stdout.write("\\n")
    facts("after")
    """,
    )
    assert status == 0, out
    text = out.decode()
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
    facts = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines if line.split(" ")[0] in ("outside", "inside", "after")}
    assert facts["outside"].startswith("True True True os.terminal_size(columns=101, lines=33)")
    assert facts["inside"] == facts["outside"]
    assert facts["after"] == facts["outside"]
    # Colours and the progress bar reached the terminal as written.
    assert "\x1b[31mred\x1b[0m plain" in text
    assert "\r 50% [#####     ]" in text
    run = only_run(project)
    logged = run.logs(lines=True)
    texts = [line.text for line in logged]
    assert texts[0] == "inside " + facts["inside"]
    assert texts[1] == "\x1b[31mred\x1b[0m plain"
    # A progress bar is one line: its final state.
    assert texts[2:] == ["100% [##########]"]


def test_a_change_of_the_window_size_is_passed_on(project: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    script = project / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, time, lab
            with lab.Experiment("t").start_run():
                print("before", os.get_terminal_size(1), flush=True)
                deadline = time.monotonic() + 20
                while os.get_terminal_size(1).columns != 77 and time.monotonic() < deadline:
                    time.sleep(0.02)
                print("after", os.get_terminal_size(1), flush=True)
            """
        )
    )
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=project, env=lab_env(project), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    resized = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if b"before" in out and not resized:
            # The user resizes the window.
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 77, 0, 0))
            resized = True
        if proc.poll() is not None and not ready:
            break
    os.close(master)
    assert proc.wait(timeout=10) == 0, out
    assert b"before os.terminal_size(columns=101, lines=33)" in out
    assert b"after os.terminal_size(columns=77, lines=20)" in out


def test_a_progress_bar_is_stored_as_its_final_state(project: Path) -> None:
    run_python(
        project,
        """
        import sys, lab
        with lab.Experiment("t").start_run():
            for epoch in range(3):
                for i in range(1000):
                    sys.stderr.write(f"\\repoch {epoch} {i + 1}/1000")
                sys.stderr.write("\\r\\n" if epoch else "\\n")
            print("done")
        """,
        check=True,
    )
    assert only_run(project).logs(stream="stdout") == "done\n"
    assert only_run(project).logs(stream="stderr") == "epoch 0 1000/1000\nepoch 1 1000/1000\nepoch 2 1000/1000\n"


def test_past_the_bound_the_head_and_tail_are_kept_and_the_cut_is_said(project: Path) -> None:
    proc = run_python(
        project,
        """
        import lab
        with lab.Experiment("t", capture_limit=1000).start_run():
            for i in range(10_000):
                print(f"line {i:05d}")
        """,
        check=True,
    )
    assert len(proc.stdout.splitlines()) == 10_000
    got = only_run(project).logs(lines=True)
    # Each line costs 11 bytes: 45 fit in each half of 1000.
    head = [line.text for line in got[:45]]
    assert head == [f"line {i:05d}" for i in range(45)]
    assert got[45].stream == "lab"
    assert got[45].text.startswith("[lab: 9910 lines (109010 bytes) left out here")
    assert [line.text for line in got[46:]] == [f"line {i:05d}" for i in range(9955, 10_000)]
    shown = lab_cli(project, "logs", only_run(project).short_id).stdout.splitlines()
    assert shown[45] == "[lab: 9910 lines (109.0 KB) left out here: the run printed more than it keeps]"


def test_the_bound_can_be_set_by_the_environment(project: Path) -> None:
    env_code = """
        import os, lab
        os.environ["LAB_CAPTURE_LIMIT"] = "22"
        with lab.Experiment("t").start_run():
            for i in range(5):
                print(f"line {i:05d}")
        """
    run_python(project, env_code, check=True)
    texts = [line.text for line in only_run(project).logs(lines=True)]
    assert texts == ["line 00000", "[lab: 3 lines (33 bytes) left out here: the run printed more than it keeps]", "line 00004"]


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_capture_can_be_turned_off(project: Path, how: str) -> None:
    code = """
        import os, sys, lab
        if sys.argv[1] == "environment":
            os.environ["LAB_CAPTURE"] = "0"
        e = lab.Experiment("t", capture=sys.argv[1] != "argument")
        with e.start_run():
            print("shown, not recorded")
            os.write(2, b"neither\\n")
        """
    proc = run_python(project, code, how, check=True)
    assert proc.stdout == "shown, not recorded\n"
    assert proc.stderr.endswith("neither\n")
    run = only_run(project)
    assert run.logs() == ""
    assert run.logs(lines=True) == []
    empty = lab_cli(project, "logs", run.short_id)
    assert empty.stdout == "" and "recorded no console output" in empty.stderr


def test_the_last_lines_before_a_kill_9_are_kept(project: Path) -> None:
    script = project / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time, lab
            e = lab.Experiment("t")
            with e.start_run():
                for i in range(200):
                    print(f"step {i}", flush=True)
                print("last words", file=sys.stderr, flush=True)
                # Wait until the lines are in the journal, then say so.
                deadline = time.monotonic() + 30
                while "last words" not in lab.get_run(e.run_id).logs():
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                open("ready", "w").close()
                time.sleep(600)
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], cwd=project, env=lab_env(project), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (project / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    run = only_run(project)
    assert run.status == "crashed"
    shown = lab_cli(project, "logs", run.short_id)
    assert shown.stdout.splitlines() == [f"step {i}" for i in range(200)] + ["last words"]


def test_past_the_bound_the_last_lines_before_a_kill_9_are_kept(project: Path) -> None:
    script = project / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import pathlib, sys, time, lab
            e = lab.Experiment("t", capture_limit=1000)
            with e.start_run():
                for i in range(10_000):
                    print(f"line {i:05d}", flush=True)
                print("last words", file=sys.stderr, flush=True)
                # Wait until the tail's files on disk hold the last line.
                folder = pathlib.Path(lab.get_run(e.run_id).path)
                deadline = time.monotonic() + 30
                while not any(b"last words" in f.read_bytes() for f in folder.glob("console-tail.*.lab")):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                open("ready", "w").close()
                time.sleep(600)
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], cwd=project, env=lab_env(project), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (project / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    run = only_run(project)
    assert run.status == "crashed"
    got = run.logs(lines=True)
    # The head as the bound keeps it (45 lines of 11 bytes in 500), the cut,
    # then the last lines printed, in order, up to the very last.
    assert [line.text for line in got[:45]] == [f"line {i:05d}" for i in range(45)]
    assert got[45].stream == "lab"
    left_out = int(got[45].text.split()[1])
    tail = [line.text for line in got[46:]]
    assert tail[-1] == "last words" and len(tail) >= 2
    first = 10_000 - (len(tail) - 1)
    assert tail[:-1] == [f"line {i:05d}" for i in range(first, 10_000)]
    assert 45 + left_out + len(tail) - 1 == 10_000
    # At most the tail's half of the bound, and at least half of that.
    assert 250 <= sum(len(t) + 1 for t in tail) <= 500 + 11
    shown = lab_cli(project, "logs", run.short_id).stdout.splitlines()
    assert shown[-1] == "last words" and shown[45].startswith(f"[lab: {left_out} lines")


def test_a_run_that_ends_past_its_bound_leaves_no_tail_files(project: Path) -> None:
    run_python(
        project,
        """
        import lab
        with lab.Experiment("t", capture_limit=1000).start_run():
            for i in range(10_000):
                print(f"line {i:05d}", flush=True)
        """,
        check=True,
    )
    run = only_run(project)
    assert list(Path(run.path).glob("console-tail.*")) == []
    assert [line.text for line in run.logs(lines=True)][-1] == "line 09999"


def test_lab_logs_follow_shows_lines_as_they_come_until_the_run_ends(project: Path) -> None:
    script = project / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, time, lab
            e = lab.Experiment("t")
            with e.start_run():
                open("run_id", "w").write(e.run_id)
                print("first", flush=True)
                while not os.path.exists("go"):
                    time.sleep(0.02)
                print("second", flush=True)
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], cwd=project, env=lab_env(project), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (project / "run_id").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    run_id = (project / "run_id").read_text()
    follow = subprocess.Popen(
        [str(Path(sys.executable).parent / "lab"), "logs", "-f", run_id[:8]],
        cwd=project,
        env=lab_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follow.stdout is not None
    assert follow.stdout.readline() == "first\n"
    assert follow.poll() is None, "follow stopped while the run is running"
    (project / "go").touch()
    assert proc.wait(timeout=60) == 0
    out, err = follow.communicate(timeout=30)
    assert out == "second\n", err
    assert follow.returncode == 0


def test_invalid_utf8_and_control_bytes(project: Path) -> None:
    raw = b"bad \xff\xfe bytes\n\x00nul\x07 bell \x1b]0;title\x07 osc\n"
    script = project / "script.py"
    script.write_text(f"import os, lab\nwith lab.Experiment('t').start_run():\n    os.write(1, {raw!r})\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=project, env=lab_env(project), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # The raw bytes reached the terminal as written.
    assert proc.stdout == raw
    run = only_run(project)
    assert run.logs() == "bad \ufffd\ufffd bytes\n\x00nul\x07 bell \x1b]0;title\x07 osc\n"
    # Piped, `lab logs` writes the text as recorded.
    assert lab_cli(project, "logs", run.short_id).stdout == run.logs()


def test_a_100_mb_line_without_newline_keeps_its_start(project: Path) -> None:
    code = """
        import os, lab
        def write_all(data):
            # A write to a pipe may be cut short by a signal: write the rest.
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
        chunk = b"x" * (1 << 20)
        with lab.Experiment("t").start_run():
            for _ in range(100):
                write_all(chunk)
        """
    script = project / "script.py"
    script.write_text(textwrap.dedent(code))
    subprocess.run([sys.executable, str(script)], cwd=project, env=lab_env(project), stdout=subprocess.DEVNULL, check=True, timeout=300)
    got = only_run(project).logs(lines=True)
    assert len(got) == 1
    kept = 64 * 1024
    assert got[0].text == "x" * kept + f"… ({100 * (1 << 20) - kept} more bytes)"


def test_a_million_lines(project: Path) -> None:
    code = """
        import sys, lab
        with lab.Experiment("t").start_run():
            write = sys.stdout.write
            for i in range(1_000_000):
                write(f"line {i}\\n")
        """
    script = project / "script.py"
    script.write_text(textwrap.dedent(code))
    out = subprocess.run([sys.executable, str(script)], cwd=project, env=lab_env(project), capture_output=True, check=True, timeout=600)
    assert out.stdout.count(b"\n") == 1_000_000
    assert out.stdout.endswith(b"line 999999\n")
    got = only_run(project).logs(lines=True)
    cut = [i for i, line in enumerate(got) if line.stream == "lab"]
    assert len(cut) == 1
    head, tail = got[: cut[0]], got[cut[0] + 1 :]
    dropped = int(got[cut[0]].text.split()[1])
    assert [line.text for line in head] == [f"line {i}" for i in range(len(head))]
    assert [line.text for line in tail] == [f"line {i}" for i in range(1_000_000 - len(tail), 1_000_000)]
    assert len(head) + dropped + len(tail) == 1_000_000
    assert sum(len(line.text) + 1 for line in head + tail) <= 8 << 20


def test_a_child_forked_during_the_run_prints_after_it_ended(project: Path) -> None:
    proc = run_python(
        project,
        """
        import os, time, lab
        with lab.Experiment("t").start_run():
            print("parent in the run", flush=True)
            pid = os.fork()
            if pid == 0:
                print("child in the run", flush=True)
                time.sleep(0.5)
                print("child after the run", flush=True)
                os._exit(0)
            time.sleep(0.2)
        os.waitpid(pid, 0)
        print("parent after the run", flush=True)
        """,
        check=True,
    )
    # The terminal got everything, the child's late line included. (It goes
    # through Lab's thread while the parent writes directly: with Python
    # unbuffered, its newline, a write of its own, may come after the
    # parent's last line.)
    assert sorted(proc.stdout) == sorted("parent in the run\nchild in the run\nchild after the run\nparent after the run\n")
    assert proc.stdout.startswith("parent in the run\nchild in the run\n")
    assert only_run(project).logs() == "parent in the run\nchild in the run\n"


def test_each_of_many_short_runs_keeps_its_own_lines_and_unfinished_last_line(project: Path) -> None:
    # A run's end records what is left (here an unfinished last line)
    # itself when nothing waits in the pipes, and leaves it to Lab's thread
    # when something does (as it may after a burst); either way each run
    # keeps exactly its lines.
    proc = run_python(
        project,
        """
        import sys, time, lab
        e = lab.Experiment("t")
        ids = []
        for i in range(30):
            with e.start_run():
                if i % 2:
                    print(f"run {i}")
                    print(f"err {i}", file=sys.stderr, flush=True)
                    sys.stdout.write(f"unfinished {i}")
                    sys.stdout.flush()
                    time.sleep(0.02)
                else:
                    for k in range(2000):
                        print(f"run {i} line {k}")
                    sys.stdout.write(f"unfinished {i}")
                    sys.stdout.flush()
                ids.append(e.run_id)
        print()
        print(" ".join(ids))
        """,
        check=True,
    )
    ids = proc.stdout.splitlines()[-1].split()
    assert len(ids) == 30
    for i, run_id in enumerate(ids):
        run = lab.get_run(run_id)
        if i % 2:
            assert run.logs("stdout") == f"run {i}\nunfinished {i}\n", i
            assert run.logs("stderr") == f"err {i}\n", i
        else:
            expected = "".join(f"run {i} line {k}\n" for k in range(2000)) + f"unfinished {i}\n"
            assert run.logs() == expected, i
    # The terminal got everything too.
    assert proc.stdout.count("unfinished") == 30
    assert proc.stderr.count("err ") == 15


def test_each_of_many_short_runs_in_a_terminal_keeps_its_last_line(project: Path) -> None:
    # In a terminal, a line written just before the end reaches the
    # capture's side a moment later: the end always goes through Lab's
    # thread, which waits for it.
    status, out = run_in_terminal(
        project,
        """
        import sys, lab
        e = lab.Experiment("t")
        ids = []
        for i in range(20):
            with e.start_run():
                print(f"run {i}")
                sys.stdout.write(f"last {i}")
                sys.stdout.flush()
                ids.append(e.run_id)
        print()
        print(" ".join(ids))
        """,
    )
    assert status == 0, out
    ids = out.decode().replace("\r\n", "\n").splitlines()[-1].split()
    assert len(ids) == 20
    for i, run_id in enumerate(ids):
        assert lab.get_run(run_id).logs() == f"run {i}\nlast {i}\n", i


def test_a_child_of_one_run_printing_during_the_next_is_not_recorded_in_it(project: Path) -> None:
    proc = run_python(
        project,
        """
        import os, time, lab
        e = lab.Experiment("t")
        with e.start_run():
            print("first run", flush=True)
            pid = os.fork()
            if pid == 0:
                time.sleep(0.5)
                print("child of the first run", flush=True)
                os._exit(0)
            first = e.run_id
        with e.start_run():
            print("second run", flush=True)
            time.sleep(1)
            print("second run again", flush=True)
            second = e.run_id
        os.waitpid(pid, 0)
        print(first, second, flush=True)
        """,
        check=True,
    )
    first, second = proc.stdout.split()[-2:]
    # The terminal got the child's line; neither run recorded it: the second
    # run's capture reads pipes of its own.
    assert "child of the first run" in proc.stdout
    assert lab.get_run(first).logs() == "first run\n"
    assert lab.get_run(second).logs() == "second run\nsecond run again\n"


def test_a_thread_still_printing_when_the_run_ends(project: Path) -> None:
    proc = run_python(
        project,
        """
        import threading, time, lab
        stop = threading.Event()
        def chatter():
            i = 0
            while not stop.is_set():
                print(f"tick {i}", flush=True)
                i += 1
                time.sleep(0.001)
        t = threading.Thread(target=chatter)
        with lab.Experiment("t").start_run():
            t.start()
            time.sleep(0.3)
        time.sleep(0.3)
        stop.set()
        t.join()
        """,
        check=True,
    )
    shown = proc.stdout.splitlines()
    assert shown == [f"tick {i}" for i in range(len(shown))]
    logged = only_run(project).logs().splitlines()
    # What was recorded is the ticks up to the end of the run, none lost or mangled.
    assert 0 < len(logged) < len(shown)
    assert logged == shown[: len(logged)]


def test_fds_are_restored_after_an_exception_and_ctrl_c(project: Path) -> None:
    proc = run_python(
        project,
        """
        import os, sys, lab
        before = [os.fstat(fd)[:2] for fd in (1, 2)]
        e = lab.Experiment("t")
        try:
            with e.start_run():
                print("in the failing run")
                raise ValueError("boom")
        except ValueError:
            pass
        try:
            with e.start_run():
                print("in the interrupted run")
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
        after = [os.fstat(fd)[:2] for fd in (1, 2)]
        print("same fds", before == after)
        """,
        check=True,
    )
    assert proc.stdout.splitlines()[-1] == "same fds True"
    runs = {r.status: r for r in lab.runs()}
    assert runs["failed"].logs() == "in the failing run\n"
    assert runs["interrupted"].logs() == "in the interrupted run\n"


def test_nested_runs_are_recorded_by_the_outer_one_only(project: Path) -> None:
    run_python(
        project,
        """
        import lab
        with lab.Experiment("outer").start_run():
            print("outer")
            with lab.Experiment("inner").start_run():
                print("inner")
            print("outer again")
        """,
        check=True,
    )
    runs = {r.experiment: r for r in lab.runs()}
    assert runs["outer"].logs() == "outer\ninner\nouter again\n"
    assert runs["inner"].logs() == ""


def test_a_run_in_this_process_leaves_pytests_capture_working(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with lab.Experiment("t").start_run():
        os.write(1, b"through pytest\n")
    wait_background()
    assert capfd.readouterr().out == "through pytest\n"
    assert only_run(project).logs() == "through pytest\n"


def test_the_http_api_serves_a_runs_console_from_an_offset(project: Path) -> None:
    import json
    import socket
    import urllib.error
    import urllib.request

    run_python(
        project,
        """
        import sys, lab
        with lab.Experiment("t", capture_limit=40).start_run():
            print("\\x1b[32mgreen\\x1b[0m <b>")
            for i in range(20):
                print(f"line {i}")
            print("oops", file=sys.stderr)
        """,
        check=True,
    )
    run = only_run(project)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "lab"), "ui", "--port", str(port)],
        cwd=project,
        env=lab_env(project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1/runs/{run.short_id}/logs"

    def get(query: str = "") -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(base + query, timeout=5) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = get()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        assert status == 200
        assert body["done"] is True
        texts = [(line["stream"], line["text"]) for line in body["lines"]]
        # A head of 20 bytes, the cut, a tail of 20 bytes.
        assert texts[0] == ("stdout", "\x1b[32mgreen\x1b[0m <b>")
        cut = [line for line in body["lines"] if line["stream"] == "cut"]
        assert len(cut) == 1 and cut[0]["time"] is None and cut[0]["dropped_lines"] > 0
        assert texts[-1] == ("stderr", "oops")
        assert body["lines"][0]["time"].endswith("Z")
        # Read on from `next`: nothing new.
        status, again = get(f"?after={body['next']}")
        assert (status, again["lines"], again["done"]) == (200, [], True)
        status, only = get("?stream=stderr")
        assert [line["text"] for line in only["lines"] if line["stream"] != "cut"] == ["oops"]
        status, bad = get("?stream=both")
        assert status == 400 and "`stream` must be `stdout` or `stderr`: got `both`" in bad["error"]["message"]
        status, bad = get("?after=9223372036854775806")
        assert status == 400 and "`after` must be an offset an earlier answer gave" in bad["error"]["message"]
    finally:
        server.terminate()
        server.wait(timeout=10)
