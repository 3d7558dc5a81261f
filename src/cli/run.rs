//! `flowbot run`: the live bot. Configuration from the environment (and
//! `.env`); logs through `tracing`; SIGINT/SIGTERM stop it cleanly.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config;

pub(super) fn run() -> anyhow::Result<ExitCode> {
    let config = match config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowbot: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    super::logging::init("info", config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        crate::app::run(config, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Whether a bot token is given, in the environment or in `.env`: then a
/// bare `flowbot` runs the bot, otherwise the terminal conversation.
pub(super) fn token_given() -> bool {
    const NAME: &str = "TELEGRAM_BOT_TOKEN";
    let set = |v: &str| !v.trim().is_empty();
    if std::env::var(NAME).is_ok_and(|v| set(&v)) {
        return true;
    }
    dotenvy::from_path_iter(".env").is_ok_and(|pairs| {
        pairs
            .filter_map(Result::ok)
            .any(|(k, v)| k == NAME && set(&v))
    })
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("stop signal received");
    shutdown.cancel();
}
