//! Builds the web page (`ui/`, TypeScript with Vite) into `ui/dist`, which the
//! crate embeds. Needs Node.js and npm; the npm packages come from the
//! lockfile (`npm ci`).
//!
//! `LAB_UI_SKIP_BUILD=1` embeds whatever `ui/dist` holds. Without npm and
//! without a built page, the binary serves a page that says how to build it;
//! the API works either way.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let ui = manifest.join("../../ui");
    let dist = ui.join("dist");
    for input in [
        "src",
        "scripts",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed={}", ui.join(input).display());
    }
    // The page's API types are checked against the OpenAPI document.
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("src/openapi.json").display()
    );
    println!("cargo:rerun-if-env-changed=LAB_UI_SKIP_BUILD");

    let skip = std::env::var_os("LAB_UI_SKIP_BUILD").is_some_and(|v| v != "0");
    if !skip && ui.join("package.json").is_file() {
        match build(&ui) {
            Ok(()) => return,
            Err(why) if dist.join("index.html").is_file() => {
                println!(
                    "cargo:warning=the web page was not rebuilt ({why}); embedding the last build in ui/dist"
                );
                return;
            }
            Err(why) => println!("cargo:warning=the web page was not built: {why}"),
        }
    }
    if !dist.join("index.html").is_file() {
        fallback(&dist);
    }
}

/// `npm ci` when the installed packages are missing or older than the
/// lockfile, then `npm run build`.
fn build(ui: &Path) -> Result<(), String> {
    let installed = ui.join("node_modules/.package-lock.json");
    let stale = match (
        modified(&installed),
        modified(&ui.join("package-lock.json")),
    ) {
        (Some(i), Some(l)) => i < l,
        _ => true,
    };
    if stale {
        npm(ui, &["ci", "--no-audit", "--no-fund"])?;
    }
    npm(ui, &["run", "build"])
}

fn npm(dir: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("`npm` could not be started ({e}); install Node.js 20 or newer"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`npm {}` failed ({status})", args.join(" ")))
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// A page that says the web page was not built, so the binary still builds.
fn fallback(dist: &Path) {
    let page = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Lab</title></head>\n\
<body><h1>Lab</h1><p>This build of Lab has no web page: Node.js and npm were not found when it was built.\n\
Install Node.js 20 or newer and build Lab again. The API under <code>/api/v1</code> works.</p></body></html>\n";
    if let Err(e) =
        std::fs::create_dir_all(dist).and_then(|()| std::fs::write(dist.join("index.html"), page))
    {
        println!("cargo:warning=cannot write {}: {e}", dist.display());
    }
}
