""".ci/check-cycles: modules of a crate that import each other in a circle fail the lint."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / ".ci" / "check-cycles"


def check(tmp_path: Path, crates: dict[str, dict[str, str]]) -> subprocess.CompletedProcess:
    """Runs the script on a tree of `crates`, each a map of file name under `src/` to text."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(SCRIPT, tmp_path / ".ci" / "check-cycles")
    for crate, files in crates.items():
        (tmp_path / "crates" / crate).mkdir(parents=True)
        (tmp_path / "crates" / crate / "Cargo.toml").write_text("")
        for name, text in files.items():
            path = tmp_path / "crates" / crate / "src" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
    return subprocess.run(
        [sys.executable, str(tmp_path / ".ci" / "check-cycles")], capture_output=True, text=True, timeout=60
    )


def test_the_project_has_no_circle_but_the_one_being_removed() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    circles = [line for line in proc.stderr.splitlines() if "in a circle" in line]
    assert circles in ([], ["check-cycles: lab_server (lib.rs): modules import each other in a circle: api, events"]), proc.stderr
    assert proc.returncode == (1 if circles else 0)


def test_a_circle_of_two_modules_is_named_with_its_lines(tmp_path: Path) -> None:
    proc = check(
        tmp_path,
        {
            "k": {
                "lib.rs": "mod a;\nmod b;\npub struct Root;\n",
                "a.rs": "use crate::{Root, b::{self, B as Bee}};\n",
                "b.rs": "pub struct B;\nfn f() -> u8 { crate :: a :: g() }\n",
            }
        },
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[:3] == [
        "check-cycles: k (lib.rs): modules import each other in a circle: a, b",
        "  a -> b: `use crate::{Root, b::{self, B as Bee}}` at crates/k/src/a.rs:1",
        "  b -> a: `crate::a::g` at crates/k/src/b.rs:2",
    ]
    assert "hint: " in proc.stderr


def test_a_longer_circle_through_nested_and_inline_modules(tmp_path: Path) -> None:
    proc = check(
        tmp_path,
        {
            "k": {
                "lib.rs": "mod a;\nmod q;\npub mod e;\n",
                "a.rs": "use super::q::inner::Thing;\n",
                "q/mod.rs": "pub mod inner;\n",
                "q/inner.rs": "pub struct Thing;\nfn k() { super::super::e::deep::go(); }\n",
                "e.rs": "pub mod deep {\n    pub fn go() { crate::a::f(); }\n}\n",
            }
        },
    )
    assert proc.returncode == 1
    assert "modules import each other in a circle: a, e, q" in proc.stderr
    assert "q::inner -> e::deep: `super::super::e::deep::go` at crates/k/src/q/inner.rs:2" in proc.stderr


def test_a_folder_counts_with_what_it_holds(tmp_path: Path) -> None:
    # `graph` uses an item of `commands` (its mod.rs); `commands::show` uses `graph`.
    proc = check(
        tmp_path,
        {
            "k": {
                "lib.rs": "mod commands;\nmod graph;\n",
                "commands/mod.rs": "mod show;\npub fn source_name() {}\nfn run() { show::run() }\n",
                "commands/show.rs": "pub fn run() { crate::graph::svg() }\n",
                "graph.rs": "pub fn svg() { crate::commands::source_name() }\n",
            }
        },
    )
    assert proc.returncode == 1
    assert "modules import each other in a circle: commands, graph" in proc.stderr


def test_what_is_no_circle(tmp_path: Path) -> None:
    proc = check(
        tmp_path,
        {
            "k": {
                # Children using their parent's items and the parent its children's;
                # paths in comments, strings and visibilities; test code.
                "lib.rs": """\
                    //! use crate::b; in a doc comment
                    mod a;
                    mod b;
                    mod p;
                    #[cfg(test)]
                    mod t;
                    pub struct Root;
                    fn f() -> &'static str { crate::p::c::go(); "crate::b::x" }
                    const C: char = '"';
                    const D: char = '\\'';
                    const E: &[u8] = br#"crate::b "#;
                    """,
                "a.rs": "use crate::Root;\nuse crate::b::g;\npub(crate) fn f<'a>(x: &'a str) -> &'a str { x }\n",
                "b.rs": """\
                    pub(in crate::a) fn h() {}
                    pub(super) fn g() { let _ = "\\"crate::a"; let _ = r#"crate::a "q" "#; }
                    /* nested /* crate::a::f */ still crate::a */
                    pub fn k() -> crate::p::P { crate::p::P }
                    #[cfg(test)]
                    mod tests { use crate::a::f; }
                    """,
                "t.rs": "use crate::a::f;\n",
                "p/mod.rs": "pub mod c;\n#[doc(hidden)]\npub mod fuzzing;\npub struct P;\nfn g() { c::go(); self::c::go(); }\n",
                "p/c.rs": "use super::P;\nuse crate::Root;\npub fn go() {}\n",
                "p/fuzzing.rs": "use crate::b::g;\n",
            }
        },
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
