//! `flowbot check`: validate a flow and show every problem.

use std::path::Path;
use std::process::ExitCode;

use crate::flow::compile;

pub(super) fn run(path: &Path, strict: bool) -> anyhow::Result<ExitCode> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    let report = match compile::load(&source) {
        Ok(loaded) => loaded.warnings,
        Err(report) => report,
    };
    print!("{}", report.render(&name, &source));
    let code = if report.errors() > 0 {
        1
    } else if strict && report.warnings() > 0 {
        2
    } else {
        println!("{name}: всё в порядке, версия {}", version(&source));
        0
    };
    Ok(ExitCode::from(code))
}

fn version(source: &str) -> String {
    compile::load(source)
        .map(|l| l.flow.version)
        .unwrap_or_default()
}
