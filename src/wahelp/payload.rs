//! Reading Wahelp webhook payloads (being written).
