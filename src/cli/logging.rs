//! Log lines on standard error through `tracing`: text for people (colours
//! only on a terminal) or one JSON object per line (`LOG_FORMAT=json`),
//! filtered by `RUST_LOG`.

use crate::config::LogFormat;

/// Installs the process's log output; `default_filter` applies when
/// `RUST_LOG` is unset or unusable. A second call changes nothing.
pub(crate) fn init(default_filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
