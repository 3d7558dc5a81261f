//! The JSON Schema of the flow file, generated from the raw types.
//!
//! Editors (VS Code with the YAML extension) read it for completion and for
//! the Russian hover help that the raw types' doc comments become.

use super::raw::RawFlow;

/// The schema as pretty JSON, ending with a newline (as committed in `schema/`).
pub fn generate() -> String {
    let schema = schemars::schema_for!(RawFlow);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
