//! CLI tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
