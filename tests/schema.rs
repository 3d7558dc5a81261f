//! The committed JSON Schema matches the Rust types, and the default flow satisfies it.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_schema_is_up_to_date() {
    let committed =
        std::fs::read_to_string(root().join("schema/flow.schema.json")).unwrap_or_default();
    let generated = flowbot::flow::schema::generate();
    assert!(
        committed == generated,
        "schema/flow.schema.json is stale: run `cargo run -- schema > schema/flow.schema.json`"
    );
}

#[test]
fn schema_has_russian_help_on_fields() {
    let schema: serde_json::Value =
        serde_json::from_str(&flowbot::flow::schema::generate()).unwrap_or_default();
    let texts = &schema["properties"]["texts"]["description"];
    assert!(
        texts.as_str().is_some_and(|d| d.contains("Тексты")),
        "{texts}"
    );
}

#[test]
fn default_flow_validates_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&flowbot::flow::schema::generate()).unwrap_or_default();
    let source = std::fs::read_to_string(root().join("flows/default.yaml")).unwrap_or_default();
    let flow: serde_json::Value = match serde_saphyr::from_str(&source) {
        Ok(v) => v,
        Err(e) => panic!("default flow is not YAML: {e}"),
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(v) => v,
        Err(e) => panic!("schema does not compile: {e}"),
    };
    let errors: Vec<String> = validator
        .iter_errors(&flow)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "default flow breaks the schema:\n{}",
        errors.join("\n")
    );
}

#[test]
fn default_flow_points_editors_at_the_schema() {
    let source = std::fs::read_to_string(root().join("flows/default.yaml")).unwrap_or_default();
    assert_eq!(
        source.lines().next(),
        Some("# yaml-language-server: $schema=../schema/flow.schema.json")
    );
}
