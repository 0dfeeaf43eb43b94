//! Fuzzes the scenario loader: the scenario file and every table it names. The first
//! byte picks which of the example's files the rest of the input replaces (the
//! scenario file itself or one of its tables); the others stay the example's own. Any
//! input must load or give problems, never a panic, a hang or a huge allocation.
#![no_main]

use kunta::example::FILES;
use kunta::io::scenario::{validate, Source};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A directory holding the example's files, written once per process.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kunta-fuzz-scenario-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        for (name, text) in FILES {
            std::fs::write(dir.join(name), text).expect("the example's files");
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let dir = dir();
    let (name, original) = FILES[usize::from(pick) % FILES.len()];
    let path = dir.join(name);
    std::fs::write(&path, content).expect("the fuzzed file");
    let _ = validate(&Source::File(dir.join("scenario.toml")));
    std::fs::write(&path, original).expect("the example's file back");
});
