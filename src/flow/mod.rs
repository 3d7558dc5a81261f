//! The flow language: raw YAML types, loading, validation, normalisation and matching.

pub mod hours;
pub mod node;
pub mod normalize;
pub mod suggest;
