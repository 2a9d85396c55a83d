//! Prints the HTTP API's OpenAPI document, as `crates/lab_server/src/openapi.json`
//! should hold it:
//!
//! ```text
//! cargo run -q -p lab_server --example openapi > crates/lab_server/src/openapi.json
//! ```

use std::io::Write as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = lab_server::openapi::document()?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
