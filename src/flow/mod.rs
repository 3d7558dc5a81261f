//! The flow language: raw YAML types, loading, validation, normalisation and matching.

pub mod builtins;
pub mod compile;
pub mod diagnostic;
pub mod duration;
pub mod graph;
pub mod hours;
pub mod media;
pub mod model;
pub mod node;
pub mod normalize;
pub mod raw;
pub mod schema;
pub mod suggest;
pub mod template;
