//! Integration tests: one test binary (each links polars), in modules.

mod cli;
mod estimate;
mod real_data;
mod report;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `kunta` binary in `dir`.
fn kunta(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kunta"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the kunta binary runs")
}

/// A command's stderr as text.
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
