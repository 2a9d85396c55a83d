"""System metrics: what the sampler thread records while a run is live
(`sys/...`), how it is turned off, and where the metrics show."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lab
from conftest import lab_cli, lab_env, run_python

MACHINE = [
    "sys/cpu_percent",
    "sys/rss_bytes",
    "sys/mem_used_bytes",
    "sys/mem_percent",
]


@pytest.fixture(autouse=True)
def _system_metrics_as_users_have_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest turns them off for every other test.
    monkeypatch.delenv("LAB_SYSTEM_METRICS", raising=False)
    monkeypatch.delenv("LAB_SYSTEM_METRICS_INTERVAL", raising=False)


def system_names(run: lab.Run) -> list:
    return sorted(n for n in run.metrics if n.startswith("sys/"))


BURN = """
import json, multiprocessing as mp, resource, sys, time
from lab import Experiment

def burn(secs):
    # A grandchild and a child, both spinning.
    if secs > 1:
        g = mp.Process(target=burn, args=(secs - 0.5,))
        g.start()
    end = time.time() + secs
    while time.time() < end:
        pass
    if secs > 1:
        g.join()

e = Experiment("burn", system_metrics_interval=0.3)
with e.start_run():
    p = mp.get_context("fork").Process(target=burn, args=(2.5,))
    p.start()
    p.join()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"run": e.run_id, "children_cpu": used.ru_utime + used.ru_stime}))
"""


def test_the_cpu_of_the_process_tree_counts_its_children(project: Path) -> None:
    import json

    proc = run_python(project, BURN, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    run = lab.get_run(out["run"])
    for name in MACHINE:
        assert name in run.metrics, (name, run.metrics)
    history = run.metric_history("sys/cpu_percent")
    # 2.5 s at 0.3 s: about eight samples, the last at the end (fewer on a
    # loaded machine, where the thread may start late).
    assert 4 <= len(history) <= 11, history
    assert [s for s, _, _ in history] == list(range(len(history)))
    # The CPU seconds the tree used, by the samples: each covers the time
    # since the one before (the first, one interval from the baseline).
    # The last sample, at the end, came after the child was waited for: the
    # ones before it saw the child and grandchild alive.
    seconds = 0.0
    previous = None
    for _, t, percent in history[:-1]:
        span = 0.3 if previous is None else t - previous
        seconds += percent / 100 * span
        previous = t
    children = out["children_cpu"]
    # However busy the machine, the spinning child and grandchild had some
    # CPU; the parent only waited. Counted without its children, the tree
    # would show the parent's few milliseconds.
    assert children > 0.3, out
    assert seconds > 0.5 * children, (seconds, children, history)
    assert max(p for _, _, p in history[:-1]) > 10, history
    rss = run.metric_history("sys/rss_bytes")
    assert len(rss) == len(history)
    # A Python with Lab imported, and its forked children.
    assert all(v > 10e6 for _, _, v in rss), rss
    mem = [v for _, _, v in run.metric_history("sys/mem_percent")]
    assert all(0 < v < 100 for v in mem), mem


SHORT = """
import os, time
from lab import Experiment

kwargs = eval(os.environ.get("EXPERIMENT_KWARGS", "{}"))
e = Experiment("short", **kwargs)
with e.start_run():
    e.log_metric("loss", 0.5)
    time.sleep(float(os.environ.get("SLEEP", "0.3")))
print(e.run_id)
"""


def run_short(project: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> lab.Run:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    proc = run_python(project, SHORT, check=True)
    return lab.get_run(proc.stdout.split()[-1])


def test_a_run_shorter_than_the_interval_has_one_sample_at_its_end(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_short(project, monkeypatch)
    assert set(MACHINE) <= set(run.metrics), run.metrics
    for name in system_names(run):
        assert [s for s, _, _ in run.metric_history(name)] == [0], name
    # The script's own metric is as it logged it.
    assert run.metric_history("loss")[0][0] == 0
    assert run.metrics["loss"] == 0.5


def test_the_interval_comes_from_the_argument_then_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_short(project, monkeypatch, LAB_SYSTEM_METRICS_INTERVAL="0.2", SLEEP="1.1")
    # Five samples in 1.1 s, and one at the end (fewer on a loaded machine).
    assert 3 <= len(run.metric_history("sys/cpu_percent")) <= 7
    run = run_short(
        project,
        monkeypatch,
        LAB_SYSTEM_METRICS_INTERVAL="0.2",
        SLEEP="1.1",
        EXPERIMENT_KWARGS="{'system_metrics_interval': 60}",
    )
    assert len(run.metric_history("sys/cpu_percent")) == 1


def test_system_metrics_false_records_none(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_short(project, monkeypatch, EXPERIMENT_KWARGS="{'system_metrics': False}")
    assert run.metrics == {"loss": 0.5}


@pytest.mark.parametrize("value", ["0", "false", "off", "NO"])
def test_the_environment_variable_turns_them_off(
    project: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    run = run_short(project, monkeypatch, LAB_SYSTEM_METRICS=value)
    assert run.metrics == {"loss": 0.5}


def test_the_variable_turns_them_off_even_when_the_script_asks(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_short(
        project, monkeypatch, LAB_SYSTEM_METRICS="0", EXPERIMENT_KWARGS="{'system_metrics': True}"
    )
    assert run.metrics == {"loss": 0.5}


def test_bad_settings_are_refused_with_their_name(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab import Experiment

    with pytest.raises(TypeError, match=r"`system_metrics` must be True or False: got str 'yes'"):
        Experiment(system_metrics="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`system_metrics_interval` must be a number of seconds or None"):
        Experiment(system_metrics_interval="5")  # type: ignore[arg-type]
    for bad in (0, 0.01, -1, float("nan"), float("inf"), 1e9):
        with pytest.raises(ValueError, match=r"`system_metrics_interval` must be a number of seconds from 0.1 to 86400"):
            Experiment(system_metrics_interval=bad)
    # A bad variable stops the run from starting, and names itself.
    for var, value, expected in [
        ("LAB_SYSTEM_METRICS", "maybe", "`LAB_SYSTEM_METRICS` must be `1` to record system metrics or `0` not to"),
        ("LAB_SYSTEM_METRICS_INTERVAL", "5s", "`LAB_SYSTEM_METRICS_INTERVAL` must be a number of seconds from 0.1 to 86400: got \"5s\""),
    ]:
        monkeypatch.setenv(var, value)
        proc = run_python(project, SHORT)
        assert proc.returncode == 1
        assert "ValueError: " + expected in proc.stderr, proc.stderr
        monkeypatch.delenv(var)
    # Refused before anything was made: not even the project.
    assert not (project / ".lab").exists()


def test_lab_show_lists_them_in_their_own_block(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_short(project, monkeypatch)
    out = lab_cli(project, "show", run.short_id)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    metrics = text[text.index("\nMetrics\n") : text.index("\nSystem\n")]
    system = text[text.index("\nSystem\n") :]
    assert "loss" in metrics and "sys/" not in metrics
    lines = system.splitlines()
    assert lines[2].split()[:5] == ["NAME", "LAST", "MIN", "MAX", "SAMPLES"]
    names = [line.split()[0] for line in lines[3:] if line.strip()]
    # In Lab's order, whatever order they came in.
    assert names[:4] == MACHINE
    # Values in their units.
    cpu = next(line for line in lines if line.split()[:1] == ["sys/cpu_percent"])
    assert " %" in cpu
    rss = next(line for line in lines if line.split()[:1] == ["sys/rss_bytes"])
    assert "MB" in rss
    # The runs table leaves them to `--columns`.
    ls = lab_cli(project, "ls")
    assert "loss" in ls.stdout and "sys/" not in ls.stdout, ls.stdout
    ls = lab_cli(project, "ls", "--columns", "`sys/rss_bytes`")
    assert ls.returncode == 0, ls.stderr
    assert "sys/rss_bytes" in ls.stdout
    # `lab compare` puts them after the script's metrics.
    other = run_short(project, monkeypatch)
    compare = lab_cli(project, "compare", run.short_id, other.short_id)
    assert compare.returncode == 0, compare.stderr
    rows = [line.split()[0] for line in compare.stdout.splitlines() if line.startswith("  ")]
    assert rows.index("loss") < rows.index("sys/cpu_percent"), compare.stdout
    # And they can be queried by name.
    where = lab_cli(project, "ls", "--where", "`sys/rss_bytes` > 1000000")
    assert where.returncode == 0, where.stderr
    assert run.short_id in where.stdout


KILLED = """
import time
from lab import Experiment

e = Experiment("killed", system_metrics_interval=0.1)
with e.start_run():
    print(e.run_id, flush=True)
    step = 0
    while True:
        e.log_metric("loss", 1.0 / (step + 1), step=step)
        print(step, flush=True)
        step += 1
        time.sleep(0.001)
"""


def test_a_killed_run_keeps_its_steps_and_its_samples(project: Path) -> None:
    script = project / "killed.py"
    script.write_text(KILLED)
    for wait in (0.05, 0.35, 0.8):
        with subprocess.Popen(
            [sys.executable, str(script)], cwd=project, env=lab_env(project), stdout=subprocess.PIPE, text=True
        ) as child:
            assert child.stdout is not None
            run_id = child.stdout.readline().strip()
            deadline = time.monotonic() + wait
            acknowledged = []
            while time.monotonic() < deadline:
                acknowledged.append(int(child.stdout.readline()))
            child.send_signal(signal.SIGKILL)
            acknowledged += [int(x) for x in child.stdout.read().split()]
            child.wait()
        run = lab.get_run(run_id)
        assert run.status == "crashed"
        steps = [s for s, _, _ in run.metric_history("loss")]
        assert steps[: len(acknowledged)] == acknowledged
        samples = run.metric_history("sys/cpu_percent")
        if wait >= 0.35:
            # Samples every 0.1 s while it lived (the first after Python and
            # Lab started), none lost to the kill.
            assert len(samples) >= 2, (wait, samples)
        assert [s for s, _, _ in samples] == list(range(len(samples)))


SAMPLED = """
import json, math, time
from lab import Experiment

e = Experiment("sampled", system_metrics_interval=0.2)
with e.start_run():
    for step in range(40):
        e.log_metric("loss", math.exp(-step / 10), step=step)
        time.sleep(0.03)
print(e.run_id)
"""


def test_the_run_page_charts_them_in_a_system_section(project: Path) -> None:
    from playwright import sync_api

    from test_ui_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, Page, canvas_colours, lab_ui

    run_id = run_python(project, SAMPLED, check=True).stdout.split()[-1]
    run = lab.get_run(run_id)
    system = system_names(run)
    assert set(MACHINE) <= set(system)
    with lab_ui(project) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for width, height in [(1440, 900), (390, 844)]:
                ctx = browser.new_context(viewport={"width": width, "height": height})
                page = Page(ctx.new_page(), base)
                page.goto(f"#/run/{run_id}")
                section = page.page.locator('[data-testid="system-section"]')
                sync_api.expect(section).to_be_visible()
                sync_api.expect(section.locator("h2")).to_have_text("System")
                # Every system metric is charted there, CPU first, and the
                # script's metric is not.
                charts = section.locator('[data-testid="metric-chart"]')
                sync_api.expect(charts).to_have_count(len(system))
                assert charts.first.get_attribute("data-metric") == "sys/cpu_percent"
                assert section.locator('[data-metric="loss"]').count() == 0
                # The script's metrics come first, and hold no system metric.
                main = page.page.locator(".run-main > .charts-grid")
                assert main.locator('[data-testid="metric-chart"]').count() == 1
                assert main.locator('[data-metric="loss"]').count() == 1
                # A chart draws its samples, labelled in words.
                cpu = '[data-testid="system-section"] [data-metric="sys/cpu_percent"]'
                page.page.locator(cpu).scroll_into_view_if_needed()
                page.page.wait_for_function(f"() => Number(document.querySelector('{cpu}').dataset.points) > 1")
                assert canvas_colours(page, cpu) > 2, "the canvas is blank"
                sync_api.expect(page.page.locator(cpu + " .chart-sub")).to_contain_text("CPU of the process and its children")
                # The side column lists them apart, in their units.
                side = page.page.locator(".run-side")
                sync_api.expect(side.locator("h2", has_text="Metrics (1)")).to_have_count(1)
                sync_api.expect(side.locator("h2", has_text=f"System ({len(system)})")).to_have_count(1)
                sync_api.expect(side.locator(".metrics-summary").nth(1)).to_contain_text(" %")
                # In their units: bytes on the memory chart's axis.
                rss = '[data-testid="system-section"] [data-metric="sys/rss_bytes"]'
                page.page.locator(rss).scroll_into_view_if_needed()
                page.page.wait_for_function(f"() => Number(document.querySelector('{rss}').dataset.points) > 1")
                sync_api.expect(page.page.locator(rss + ' [data-testid="chart-legend"]')).to_contain_text("MB")
                # Every chart draws (they load as they come into view).
                for i in range(charts.count()):
                    charts.nth(i).scroll_into_view_if_needed()
                    sync_api.expect(charts.nth(i)).not_to_have_attribute("data-points", "0")
                page.page.evaluate("document.querySelector('[data-testid=\"system-section\"]').scrollIntoView()")
                page.page.screenshot(path=str(SHOTS / f"run-system-{width}-section.png"))
                page.page.locator("h1").scroll_into_view_if_needed()
                page.shot(f"run-system-{width}")
                # The runs table does not make columns of them.
                page.goto("#/")
                sync_api.expect(page.page.locator('[data-testid="sort-header-metrics.loss"]')).to_have_count(1)
                assert page.page.locator('[data-testid^="sort-header-metrics.sys/"]').count() == 0
                assert page.errors == [] and page.dialogs == []
                ctx.close()
        finally:
            browser.close()


FORKS = """
import os, time
from lab import Experiment

e = Experiment("forks", system_metrics_interval=0.1)
with e.start_run():
    for _ in range(5):
        pid = os.fork()
        if pid == 0:
            # A child of a sampled run: no sampler of its own for it, and
            # its end of the block leaves the parent's run alone.
            time.sleep(0.15)
            os._exit(0)
        os.waitpid(pid, 0)
    e.log_metric("loss", 0.5)
print(e.run_id)
"""


def test_forked_children_leave_the_parents_sampler_alone(project: Path) -> None:
    proc = run_python(project, FORKS, check=True)
    run = lab.get_run(proc.stdout.split()[-1])
    assert run.status == "finished"
    samples = run.metric_history("sys/cpu_percent")
    # About eight samples in 0.75 s, numbered without a gap or a repeat.
    assert len(samples) >= 3, samples
    assert [s for s, _, _ in samples] == list(range(len(samples)))
    assert run.metrics["loss"] == 0.5
