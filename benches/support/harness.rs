//! The frame of every bench program: the work runs on a two-thread tokio
//! runtime (the machines have two cores), and a failure names the bench
//! and exits with status 1.

/// Runs `work` to its end; exits with status 1 on an error.
pub fn run(name: &str, work: impl Future<Output = Result<(), String>>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(name, &format!("cannot build the tokio runtime: {e}")));
    if let Err(e) = runtime.block_on(work) {
        fail(name, &e);
    }
}

/// Says that bench `name` failed, and why, and exits with status 1.
pub fn fail(name: &str, message: &str) -> ! {
    eprintln!("\n{name}: FAILED: {message}");
    std::process::exit(1);
}
