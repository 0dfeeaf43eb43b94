//! A run's output directory, written all or nothing.
//!
//! The tables, `summary.json` and `manifest.json` are written into a fresh hidden
//! directory beside the output directory, named for this process
//! (`.DIR.kunta-tmp-PID-N`), and put in place in one step at the end: on Linux the
//! two directories are exchanged atomically (`renameat2` with `RENAME_EXCHANGE`) and
//! the old one removed; elsewhere the old one is renamed aside first. A run that
//! fails, is killed or races another run into the same directory therefore leaves it
//! exactly as it was, or wholly one run's. Hidden directories of runs that were
//! killed are removed by the next run once their process is gone.
//!
//! An existing output directory is replaced only when it is empty or holds nothing
//! but what a run writes (its tables, `summary.json`, `manifest.json`,
//! `report.html`, `kunta.xlsx`), so that `--out` never deletes a user's other files.
#![allow(unsafe_code)]

use super::IoError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory being written: write into [`OutputSet::path`], then
/// [`OutputSet::commit`]. Dropped without a commit, it is removed.
#[derive(Debug)]
pub struct OutputSet {
    target: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

/// The files a run writes: an existing directory holding only these may be replaced.
fn written_by_a_run(name: &str) -> bool {
    let stem = name
        .strip_suffix(".parquet")
        .or_else(|| name.strip_suffix(".csv"));
    matches!(
        name,
        "summary.json" | "manifest.json" | "report.html" | "kunta.xlsx"
    ) || stem.is_some_and(|s| {
        let base = s.strip_suffix("_quantiles").unwrap_or(s);
        TABLES.contains(&base)
    })
}

/// Every table kunta writes, in the README's order (the order they are listed in).
pub(crate) const TABLES: [&str; 13] = [
    "population",
    "components",
    "migration",
    "demand",
    "resources",
    "costs",
    "capacity",
    "alignment",
    "unit_costs",
    "impact",
    "totals",
    "areas",
    "backtest",
];

/// Refuses an output directory that holds one of the run's own inputs: the directory
/// is replaced whole, and an input in it would be lost.
///
/// # Errors
/// [`IoError::Output`] naming the input.
pub fn refuse_inputs_inside(dir: &Path, inputs: &[PathBuf]) -> Result<(), IoError> {
    let Ok(out) = std::fs::canonicalize(dir) else {
        // A directory that does not exist yet holds nothing.
        return Ok(());
    };
    for input in inputs {
        if let Ok(p) = std::fs::canonicalize(input) {
            if p.starts_with(&out) {
                return Err(IoError::Output {
                    path: dir.to_path_buf(),
                    message: format!(
                        "holds {}, an input of this run: the output directory is replaced as a whole, so give another one",
                        input.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The prefix of the hidden directories written beside `target`.
fn prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.kunta-tmp-")
}

impl OutputSet {
    /// Prepares to write `dir`: checks that it is absent, empty or a run's output,
    /// removes what killed runs left beside it, and creates this run's hidden
    /// directory.
    ///
    /// # Errors
    /// [`IoError::Output`] for a `dir` that is not a directory or holds files a run
    /// does not write; [`IoError::File`] if the hidden directory cannot be created.
    pub fn create(dir: &Path) -> Result<OutputSet, IoError> {
        OutputSet::create_for(dir, &written_by_a_run)
    }

    /// Like [`OutputSet::create`] for `kunta estimate`, whose directory holds a
    /// scenario and its tables (`scenario.toml`, `population.csv`, `fertility.csv`,
    /// `mortality.csv`, `improvement.csv`, `migration_net.csv`, `migration_rate_sd.csv`) and may also hold a
    /// run's output.
    ///
    /// # Errors
    /// As [`OutputSet::create`].
    pub fn create_estimate(dir: &Path) -> Result<OutputSet, IoError> {
        OutputSet::create_for(dir, &|n: &str| {
            matches!(
                n,
                "scenario.toml"
                    | "population.csv"
                    | "fertility.csv"
                    | "mortality.csv"
                    | "improvement.csv"
                    | "migration_net.csv"
                    | "migration_rate_sd.csv"
            )
        })
    }

    fn create_for(dir: &Path, ours: &dyn Fn(&str) -> bool) -> Result<OutputSet, IoError> {
        // `--out .` and the like: the directory itself by its full name.
        let target = if dir.file_name().is_none() {
            std::path::absolute(dir).map_err(|source| IoError::File {
                path: dir.to_path_buf(),
                action: "find the output directory",
                source,
            })?
        } else {
            dir.to_path_buf()
        };
        let refuse = |message: String| IoError::Output {
            path: dir.to_path_buf(),
            message,
        };
        match std::fs::symlink_metadata(&target) {
            Ok(m) if !m.is_dir() => {
                return Err(refuse("exists and is not a directory".into()));
            }
            Ok(_) => {
                let entries = std::fs::read_dir(&target).map_err(|source| IoError::File {
                    path: dir.to_path_buf(),
                    action: "read the output directory",
                    source,
                })?;
                let mut foreign: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !ours(n) && !n.contains(".kunta-tmp"))
                    .collect();
                if !foreign.is_empty() {
                    foreign.sort();
                    foreign.truncate(3);
                    return Err(refuse(format!(
                        "holds files a run does not write ({}): a run replaces its output directory as a whole, so give a new or empty one",
                        foreign.join(", ")
                    )));
                }
            }
            Err(_) => {}
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|source| IoError::File {
            path: parent.clone(),
            action: "create the output directory's parent",
            source,
        })?;
        clean_leftovers(&parent, &prefix(&target));
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let tmp = parent.join(format!(
            "{}{}-{}",
            prefix(&target),
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&tmp).map_err(|source| IoError::File {
            path: tmp.clone(),
            action: "create a temporary output directory",
            source,
        })?;
        Ok(OutputSet {
            target,
            tmp,
            committed: false,
        })
    }

    /// Where the files go until [`OutputSet::commit`].
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Puts the written directory in place of the output directory in one step and
    /// removes the old one.
    ///
    /// # Errors
    /// [`IoError::File`] if the directory cannot be put in place; the output
    /// directory is then as it was.
    pub fn commit(mut self) -> Result<(), IoError> {
        let err = |source| IoError::File {
            path: self.target.clone(),
            action: "put the new output in place",
            source,
        };
        if std::fs::symlink_metadata(&self.target).is_err() {
            std::fs::rename(&self.tmp, &self.target).map_err(err)?;
        } else if exchange(&self.tmp, &self.target).is_err() {
            // No atomic exchange here: the old directory is renamed aside first.
            let mut aside = self.tmp.clone().into_os_string();
            aside.push(".old");
            let aside = PathBuf::from(aside);
            std::fs::rename(&self.target, &aside).map_err(err)?;
            if let Err(e) = std::fs::rename(&self.tmp, &self.target) {
                let _ = std::fs::rename(&aside, &self.target);
                return Err(err(e));
            }
            let _ = std::fs::remove_dir_all(&aside);
            self.committed = true;
            return Ok(());
        }
        // After an exchange the old output is at the temporary name.
        let _ = std::fs::remove_dir_all(&self.tmp);
        self.committed = true;
        Ok(())
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Swaps two directories atomically.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Removes the hidden directories beside the output directory that runs left when
/// they were killed: those whose process no longer runs (known on Linux only;
/// elsewhere they are left, and ignored).
fn clean_leftovers(parent: &Path, prefix: &str) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let pid = rest.split(['-', '.']).next().unwrap_or_default();
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_replaces_a_runs_directory_and_leaves_others_alone() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        // New.
        let set = OutputSet::create(&out).unwrap();
        std::fs::write(set.path().join("population.csv"), "new").unwrap();
        set.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("population.csv")).unwrap(),
            "new"
        );
        // Replaced whole: a table the new run does not write is gone.
        let set = OutputSet::create(&out).unwrap();
        std::fs::write(set.path().join("demand.csv"), "d").unwrap();
        set.commit().unwrap();
        assert!(!out.join("population.csv").exists());
        assert!(out.join("demand.csv").exists());
        // Dropped without a commit: nothing changes, nothing is left beside it.
        let set = OutputSet::create(&out).unwrap();
        std::fs::write(set.path().join("demand.csv"), "other").unwrap();
        drop(set);
        assert_eq!(
            std::fs::read_to_string(out.join("demand.csv")).unwrap(),
            "d"
        );
        let names: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["out"]);
        // A killed run's leftover (a process that no longer runs) is cleaned.
        let stale = root.path().join(".out.kunta-tmp-4294967-0");
        std::fs::create_dir(&stale).unwrap();
        OutputSet::create(&out).unwrap();
        assert!(!stale.exists() || !cfg!(target_os = "linux"));
        // A directory with a user's own files is refused, and left alone.
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let e = OutputSet::create(&out).unwrap_err().to_string();
        assert!(e.contains("notes.txt") && e.contains("new or empty"), "{e}");
        assert!(out.join("notes.txt").exists());
    }
}
