//! Where `lab export -o` and `lab show --graph` write: regular files, links
//! to them, standard output; every other kind of path refused untouched.

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::Path;
use std::process::Command;

use crate::{fixture, lab, lab_command, lab_ok, run_lab};

/// `lab export --format csv -o PATH` and `lab show RUN --graph PATH --graph-format svg`.
fn both(root: &Path, run: &str, path: &Path) -> [crate::Output; 2] {
    let p = path.to_str().unwrap();
    [
        lab(root, &["export", "--format", "csv", "-o", p]),
        lab(root, &["show", run, "--graph", p, "--graph-format", "svg"]),
    ]
}

fn refused(outs: &[crate::Output; 2], path: &Path, what: &str) {
    for (out, thing) in outs.iter().zip(["the export", "the diagram"]) {
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert_eq!(out.stdout, "");
        let first = out.stderr.lines().next().unwrap();
        assert_eq!(
            first,
            format!("error: cannot write {thing}: {what}: {}", path.display()),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_link_to_a_file_is_written_through_and_stays_a_link() {
    let f = fixture();
    let run = f.a.short();
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    std::fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("runs.csv");
    std::fs::write(&real, "old\n").unwrap();
    std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let before = std::fs::metadata(&real).unwrap().ino();
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink("real/runs.csv", &link).unwrap();

    let out = lab_ok(
        &f.root,
        &["export", "--format", "csv", "-o", link.to_str().unwrap()],
    );
    assert_eq!(out, format!("Exported 4 run(s) to {}\n", link.display()));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("real/runs.csv")
    );
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        lab_ok(&f.root, &["ls", "--format", "csv"])
    );
    let meta = std::fs::metadata(&real).unwrap();
    // Replaced by a rename (a new file), keeping the old file's permissions.
    assert_ne!(meta.ino(), before);
    assert_eq!(meta.mode() & 0o777, 0o600);
    // The temporary file was beside the target, and is gone.
    let names = |d: &Path| -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&real_dir), ["runs.csv"]);
    assert_eq!(names(dir.path()), ["link.csv", "real"]);

    let svg_real = real_dir.join("run.svg");
    std::fs::write(&svg_real, "old").unwrap();
    let svg_link = dir.path().join("run.svg");
    std::os::unix::fs::symlink(&svg_real, &svg_link).unwrap();
    lab_ok(
        &f.root,
        &["show", &run, "--graph", svg_link.to_str().unwrap()],
    );
    assert!(
        std::fs::symlink_metadata(&svg_link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&svg_real)
            .unwrap()
            .starts_with("<svg ")
    );
}

#[test]
fn a_link_to_nothing_is_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("dangling.csv");
    let gone = dir.path().join("gone.csv");
    std::os::unix::fs::symlink(&gone, &link).unwrap();
    let outs = both(&f.root, &f.a.short(), &link);
    refused(
        &outs,
        &link,
        &format!(
            "the output path is a symbolic link to `{}`, which does not exist",
            gone.display()
        ),
    );
    assert!(
        outs[0]
            .stderr
            .ends_with("\n\nhint: create the file it points to first, or remove the link\n")
    );
    assert!(!gone.exists());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn folders_fifos_and_devices_are_refused_and_left_as_they_were() {
    let f = fixture();
    let run = f.a.short();
    let dir = tempfile::tempdir().unwrap();
    let listing = |d: &Path| std::fs::read_dir(d).unwrap().count();

    // A device node of our own first, where making one is allowed (root,
    // outside a user namespace): the old code renamed a file over it. The
    // real `/dev/null` and `/dev/full` are checked below either way.
    let full = dir.path().join("full");
    let made = Command::new("mknod")
        .args([full.to_str().unwrap(), "c", "1", "7"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    if made.success() {
        refused(
            &both(&f.root, &run, &full),
            &full,
            "the output path is a character device, not a regular file",
        );
        let meta = std::fs::symlink_metadata(&full).unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), std::fs::metadata("/dev/full").unwrap().rdev());
        std::fs::remove_file(&full).unwrap();
    }

    let fifo = dir.path().join("fifo.csv");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    refused(
        &both(&f.root, &run, &fifo),
        &fifo,
        "the output path is a FIFO (named pipe), not a regular file",
    );
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    let to_fifo = dir.path().join("to_fifo.csv");
    std::os::unix::fs::symlink(&fifo, &to_fifo).unwrap();
    refused(
        &both(&f.root, &run, &to_fifo),
        &to_fifo,
        &format!(
            "the output path is a symbolic link to a FIFO (named pipe) (`{}`), not to a regular file",
            fifo.display()
        ),
    );

    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    refused(
        &both(&f.root, &run, &folder),
        &folder,
        "the output path is a folder, not a regular file",
    );
    assert_eq!(listing(&folder), 0);
    let slash = format!("{}/", dir.path().join("new").display());
    refused(
        &both(&f.root, &run, Path::new(&slash)),
        Path::new(&slash),
        "the output path names a folder, not a file",
    );
    // Nothing was made beside them.
    assert_eq!(listing(dir.path()), 3, "fifo, link, folder");

    for device in ["/dev/null", "/dev/full"] {
        let outs = both(&f.root, &run, Path::new(device));
        refused(
            &outs,
            Path::new(device),
            "the output path is a character device, not a regular file",
        );
        assert!(
            outs[0]
                .stderr
                .ends_with("\n\nhint: name a regular file, or `-` for standard output\n")
        );
        let meta = std::fs::symlink_metadata(device).unwrap();
        assert!(
            meta.file_type().is_char_device(),
            "{device} is still a device"
        );
    }
    let to_null = dir.path().join("null.csv");
    std::os::unix::fs::symlink("/dev/null", &to_null).unwrap();
    refused(
        &both(&f.root, &run, &to_null),
        &to_null,
        "the output path is a symbolic link to a character device (`/dev/null`), not to a regular file",
    );
}

#[test]
fn a_dash_is_standard_output() {
    let f = fixture();
    let run = f.a.short();
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let piped = |args: &[&str]| {
        let out = run_lab(lab_command(cwd, Some(&f.root), args));
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr, "", "{args:?}");
        out.stdout
    };
    for format in ["csv", "json"] {
        assert_eq!(
            piped(&["export", "--format", format, "-o", "-"]),
            lab_ok(&f.root, &["ls", "--format", format])
        );
    }
    let parquet = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["export", "--format", "parquet", "-o", "-"])
        .env("LAB_PROJECT", &f.root)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(parquet.status.success());
    assert!(parquet.stdout.starts_with(b"PAR1") && parquet.stdout.ends_with(b"PAR1"));

    // A diagram on standard output is SVG unless `--graph-format` says.
    let svg = piped(&["show", &run, "--graph", "-"]);
    assert!(
        svg.starts_with("<svg ") && svg.ends_with("</svg>\n"),
        "{svg}"
    );
    let dot = piped(&["show", "--graph", "-", "--graph-format", "dot"]);
    assert!(dot.starts_with("digraph lab {"), "{dot}");
    let png = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["show", &run, "--graph", "-", "--graph-format", "png"])
        .env("LAB_PROJECT", &f.root)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(png.status.success());
    assert!(png.stdout.starts_with(b"\x89PNG\r\n\x1a\n"));
    // No file named `-` was made.
    assert_eq!(std::fs::read_dir(cwd).unwrap().count(), 0);

    // Standard output needs a format to export.
    let out = run_lab(lab_command(cwd, Some(&f.root), &["export", "-o", "-"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: `-o -` (standard output) needs `--format csv|json|parquet`\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_format_names_the_graph_whatever_the_extension() {
    let f = fixture();
    let run = f.a.short();
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("graph.txt");
    let out = lab(&f.root, &["show", &run, "--graph", txt.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot tell the format from the file name")
    );
    assert!(!txt.exists());
    lab_ok(
        &f.root,
        &[
            "show",
            &run,
            "--graph",
            txt.to_str().unwrap(),
            "--graph-format",
            "dot",
        ],
    );
    assert!(
        std::fs::read_to_string(&txt)
            .unwrap()
            .starts_with("digraph lab {")
    );
    let svg = dir.path().join("graph.svg");
    let out = lab(
        &f.root,
        &[
            "show",
            &run,
            "--graph",
            svg.to_str().unwrap(),
            "--graph-format",
            "dot",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "warning: writing DOT as `--graph-format` says, though the file name ends in `.svg`: {}\n",
            svg.display()
        )
    );
    assert!(
        std::fs::read_to_string(&svg)
            .unwrap()
            .starts_with("digraph lab {")
    );
}
