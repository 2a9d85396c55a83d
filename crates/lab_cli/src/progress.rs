//! Progress bars for `lab push`, `lab pull` and `lab import`, on stderr, only on a terminal.

use std::io::IsTerminal as _;
use std::sync::{Mutex, PoisonError};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-counting bar per phase (hashing, sending, fetching).
pub struct Bars {
    bar: ProgressBar,
    /// Whether to draw: stderr is a terminal.
    draw: bool,
    /// What to do once the bucket answered.
    on_answer: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Bars {
    /// A bar on stderr when it is a terminal; hidden otherwise (pipes and
    /// logs get the summary line alone).
    #[must_use]
    pub fn new() -> Self {
        // Hidden until a phase begins, so nothing is drawn before it has a length.
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template(
            "{msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Self {
            bar,
            draw: std::io::stderr().is_terminal(),
            on_answer: Mutex::new(None),
        }
    }

    /// Runs `f` once the bucket has answered.
    #[must_use]
    pub fn on_answer(self, f: impl FnOnce() + Send + 'static) -> Self {
        *self
            .on_answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(f));
        self
    }
}

impl lab_remote::Progress for Bars {
    fn begin(&self, phase: &str, files: u64, bytes: u64) {
        self.bar.set_length(bytes);
        self.bar.set_message(format!("{phase} {files} file(s)"));
        self.bar.reset();
        if self.draw {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn end(&self) {
        self.bar.finish_and_clear();
        self.bar.set_draw_target(ProgressDrawTarget::hidden());
    }

    fn answered(&self) {
        let f = self
            .on_answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(f) = f {
            self.bar.suspend(f);
        }
    }

    fn before_delete(&self, paths: &[String]) {
        let mut text = format!(
            "`--force` deletes {} file(s) from the bucket that are gone here:",
            paths.len()
        );
        for path in paths {
            text.push_str("\n  ");
            text.push_str(path);
        }
        self.bar.suspend(|| crate::output::warn(&text));
    }
}

/// A bar counting the runs `lab import` has looked at, on stderr, only on a
/// terminal.
pub struct ImportBar {
    bar: ProgressBar,
}

impl ImportBar {
    /// A bar on stderr when it is a terminal; hidden otherwise.
    #[must_use]
    pub fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let style =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} run(s) {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix("importing");
        Self { bar }
    }
}

impl lab_import::Progress for ImportBar {
    fn begin(&self, total: u64) {
        self.bar.set_length(total);
        self.bar.reset();
    }

    fn advance(&self, label: &str) {
        self.bar
            .set_message(crate::visible::text(label).into_owned());
        self.bar.inc(1);
    }

    fn end(&self) {
        self.bar.finish_and_clear();
    }
}
