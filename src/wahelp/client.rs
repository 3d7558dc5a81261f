//! Wahelp REST API client (being written).
