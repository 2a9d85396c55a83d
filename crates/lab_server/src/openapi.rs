//! The API's OpenAPI document, served at `/api/v1/openapi.json`.
//!
//! The shapes of a run come from the Rust types the API sends
//! (`lab_store::wire`, through their `utoipa::ToSchema`); everything else
//! (routes, parameters, responses and their headers, the other schemas) is
//! data in `openapi-base.json`. [`document`] puts the two together; the
//! result is committed as `openapi.json`, which the server sends and
//! `ui/src/api-types.ts` is generated from. A test fails when the committed
//! file is not what [`document`] makes:
//!
//! ```text
//! cargo run -q -p lab_server --example openapi > crates/lab_server/src/openapi.json
//! ```
//!
//! writes it again.

use lab_store::wire::{RunDetail, RunSummary};
use serde::Serialize;
use serde_json::Value as J;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// The committed document, as the server sends it.
pub(crate) const COMMITTED: &str = include_str!("openapi.json");

/// Everything but the shapes of a run.
const BASE: &str = include_str!("openapi-base.json");

/// `T`'s schema and those of the types it refers to, by name.
fn schemas_of<T: ToSchema>(into: &mut Vec<(String, RefOr<Schema>)>) {
    into.push((T::name().into_owned(), T::schema()));
    T::schemas(into);
}

/// The OpenAPI document, as JSON text (keys in name order, one space of
/// indent, a newline at the end). Fails only when `openapi-base.json` is
/// not JSON with a `components.schemas` object, which a test rules out.
pub fn document() -> Result<String, serde_json::Error> {
    let mut doc: J = serde_json::from_str(BASE)?;
    let mut generated = Vec::new();
    schemas_of::<RunSummary>(&mut generated);
    schemas_of::<RunDetail>(&mut generated);
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(J::as_object_mut)
        .ok_or_else(|| {
            <serde_json::Error as serde::de::Error>::custom(
                "openapi-base.json has no `components.schemas` object",
            )
        })?;
    for (name, schema) in generated {
        schemas.insert(name, serde_json::to_value(schema)?);
    }
    let mut out = Vec::new();
    let mut writer = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b" "),
    );
    doc.serialize(&mut writer)?;
    out.push(b'\n');
    // serde_json writes UTF-8 only.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    /// The line where two texts first differ, with a few lines around it.
    fn first_difference(want: &str, got: &str) -> String {
        let (want, got): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
        let at = want
            .iter()
            .zip(&got)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(got.len()));
        let around = |lines: &[&str], sign: char| {
            let mut out = String::new();
            for (i, l) in lines.iter().enumerate().skip(at.saturating_sub(3)).take(8) {
                writeln!(out, "{sign}{:>5} {l}", i + 1).unwrap();
            }
            out
        };
        format!(
            "first difference at line {}:\n{}{}",
            at + 1,
            around(&want, '-'),
            around(&got, '+')
        )
    }

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = super::document().unwrap();
        assert!(
            super::COMMITTED == generated,
            "crates/lab_server/src/openapi.json is not what the code generates \
             (- committed, + generated); {}\n\
             write it again with: cargo run -q -p lab_server --example openapi > crates/lab_server/src/openapi.json",
            first_difference(super::COMMITTED, &generated)
        );
    }

    #[test]
    fn the_pages_types_are_generated_from_the_committed_document() {
        // openapi-typescript, from ui/'s lockfile, which this crate's build
        // script installs (`npm ci`) before it builds the page.
        let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
        let out = std::process::Command::new("npm")
            .args(["run", "-s", "api-types", "--", "--check"])
            .current_dir(&ui)
            .output()
            .unwrap_or_else(|e| {
                panic!("`npm` could not be started ({e}); install Node.js 20 or newer")
            });
        assert!(
            out.status.success(),
            "ui/src/api-types.ts is not what openapi-typescript makes of \
             crates/lab_server/src/openapi.json; write it again with \
             `npm run api-types` in ui/\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
