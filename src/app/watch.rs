//! What asks for a reload from outside the chat: a save of the flow file
//! and `SIGHUP`.
//!
//! The folder is watched, not the file: vim and VS Code save by writing a
//! new file and renaming it over the old one (a watch on the old file would
//! go deaf), `nano` truncates and writes in place, and Kubernetes swaps a
//! `..data` symlink. Events are debounced: the reload starts once the
//! folder has been quiet for [`QUIET`]. A file that does not compile may be
//! half-written, so it is looked at again after [`SETTLE`] of quiet before
//! anyone is told it is broken.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{Event, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use super::core::Core;
use super::reload::{Outcome, Trigger};

/// Quiet time after the last event before the file is read.
pub const QUIET: Duration = Duration::from_millis(50);
/// A save that keeps producing events is read after this long anyway.
pub const MAX_WAIT: Duration = Duration::from_secs(1);
/// Quiet time before a file that does not compile is read again and, if it
/// still does not, reported.
pub const SETTLE: Duration = Duration::from_millis(500);
/// How often the fallback watcher looks, when the system's cannot be used.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A watch on the flow file's folder and the events it has seen.
pub struct FlowWatch {
    _watcher: Box<dyn Watcher + Send>,
    events: mpsc::UnboundedReceiver<()>,
}

/// Starts watching the flow file's folder. Called before the flow is first
/// read, so that no save can fall between the reading and the watch (one
/// that happens meanwhile waits in the channel). `None` without a usable
/// watcher: the bot still runs, and `SIGHUP` and `/reload` still reload.
pub fn watch(path: &Path) -> Option<FlowWatch> {
    let (tx, events) = mpsc::unbounded_channel();
    let watcher = start(path, tx)?;
    Some(FlowWatch {
        _watcher: watcher,
        events,
    })
}

/// Reloads after every save until `shutdown`.
pub async fn run(core: Core, watch: FlowWatch, shutdown: CancellationToken) {
    let FlowWatch {
        _watcher,
        events: mut rx,
    } = watch;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            event = rx.recv() => if event.is_none() { return },
        }
        // One save: debounce, read; a file that does not compile is read
        // again once the editor has been quiet for SETTLE, and only then
        // reported.
        loop {
            if !quiet(&mut rx, QUIET, MAX_WAIT).await {
                return;
            }
            if !matches!(core.reload_if_valid().await, Outcome::Refused { .. }) {
                break;
            }
            match timeout(SETTLE, rx.recv()).await {
                Err(_) => {
                    core.reload(Trigger::File).await;
                    break;
                }
                Ok(Some(())) => {}
                Ok(None) => return,
            }
        }
    }
}

/// Starts listening for `SIGHUP` (`systemctl reload`, `docker kill -s HUP`).
/// Called first thing at start: until a listener exists, a `SIGHUP` would
/// end the process. `None` where there is no such signal or it cannot be
/// listened to.
#[cfg(unix)]
pub fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .inspect_err(
            |e| tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with /reload"),
        )
        .ok()
}

#[cfg(not(unix))]
pub fn hangups() -> Option<()> {
    None
}

/// Reloads on every `SIGHUP` until `shutdown`; those received before this
/// runs (during the start) count too.
#[cfg(unix)]
pub async fn on_hangup(
    core: Core,
    hangups: Option<tokio::signal::unix::Signal>,
    shutdown: CancellationToken,
) {
    let Some(mut hangups) = hangups else {
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            got = hangups.recv() => if got.is_none() { return },
        }
        tracing::info!("SIGHUP received: reloading the flow");
        core.reload(Trigger::Signal).await;
    }
}

#[cfg(not(unix))]
pub async fn on_hangup(_core: Core, _hangups: Option<()>, shutdown: CancellationToken) {
    shutdown.cancelled().await;
}

/// Waits until no event came for `gap`, or `max` passed; false when the
/// watcher is gone.
async fn quiet(rx: &mut mpsc::UnboundedReceiver<()>, gap: Duration, max: Duration) -> bool {
    let deadline = Instant::now() + max;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(gap.min(left), rx.recv()).await {
            Err(_) => return true,
            Ok(None) => return false,
            Ok(Some(())) if left.is_zero() => return true,
            Ok(Some(())) => {}
        }
    }
}

/// Starts the system's watcher on the file's folder, or a polling one.
fn start(path: &Path, tx: mpsc::UnboundedSender<()>) -> Option<Box<dyn Watcher + Send>> {
    let folder = folder_of(path);
    let name = path.file_name().map(OsString::from);
    let handler = move |event: notify::Result<Event>| match event {
        Ok(event) if concerns(&event, name.as_deref()) => {
            let _ = tx.send(());
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "flow watcher error"),
    };
    let watcher: notify::Result<Box<dyn Watcher + Send>> = match notify::recommended_watcher(
        handler.clone(),
    ) {
        Ok(w) => Ok(Box::new(w)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot use the system's file watcher; checking the flow every second");
            let config = notify::Config::default().with_poll_interval(POLL_INTERVAL);
            notify::PollWatcher::new(handler, config)
                .map(|w| Box::new(w) as Box<dyn Watcher + Send>)
        }
    };
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the flow file; reload with SIGHUP or /reload");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&folder, RecursiveMode::NonRecursive) {
        tracing::error!(folder = %folder.display(), error = %e, "cannot watch the flow's folder; reload with SIGHUP or /reload");
        return None;
    }
    tracing::info!(folder = %folder.display(), "watching the flow file for changes");
    Some(watcher)
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether an event in the folder may have changed the flow file: one that
/// names it, or a swap of a `..`-prefixed entry (Kubernetes' volumes).
fn concerns(event: &Event, name: Option<&std::ffi::OsStr>) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    let relevant = match event.kind {
        // Reading the file (ours included) and attribute changes are no saves.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        _ => true,
    };
    relevant
        && event.paths.iter().any(|p| match p.file_name() {
            Some(file) => Some(file) == name || file.to_string_lossy().starts_with(".."),
            None => false,
        })
}

#[cfg(test)]
mod tests {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};

    use super::*;

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn saves_of_the_flow_file_concern_it_and_other_files_do_not() {
        let name = Some(std::ffi::OsStr::new("default.yaml"));
        let ours = [
            EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ];
        for kind in ours {
            assert!(concerns(&event(kind, "/f/default.yaml"), name), "{kind:?}");
        }
        assert!(!concerns(
            &event(EventKind::Create(CreateKind::File), "/f/.default.yaml.swp"),
            name
        ));
        assert!(!concerns(
            &event(
                EventKind::Access(AccessKind::Open(AccessMode::Read)),
                "/f/default.yaml"
            ),
            name
        ));
        assert!(concerns(
            &event(EventKind::Create(CreateKind::Any), "/f/..data"),
            name
        ));
    }

    #[test]
    fn a_bare_file_name_is_watched_in_the_current_folder() {
        assert_eq!(folder_of(Path::new("default.yaml")), PathBuf::from("."));
        assert_eq!(
            folder_of(Path::new("flows/default.yaml")),
            PathBuf::from("flows")
        );
    }

    #[tokio::test]
    async fn quiet_waits_for_a_gap_and_gives_up_at_the_cap() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        // A steady stream of events: the cap ends the wait.
        let stream = tokio::spawn(async move {
            for _ in 0..40 {
                if tx.send(()).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let quiet_seen = timeout(
            Duration::from_secs(5),
            quiet(
                &mut rx,
                Duration::from_millis(100),
                Duration::from_millis(150),
            ),
        )
        .await;
        assert_eq!(quiet_seen.ok(), Some(true));
        stream.abort();
    }
}
