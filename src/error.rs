//! The crate-level error.

/// Any error kunta reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A population cube could not be built.
    #[error(transparent)]
    Population(#[from] crate::population::PopulationError),
    /// A scenario does not hold together.
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// A run failed.
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
    /// A file could not be read or written, or its content is wrong.
    #[cfg(feature = "io")]
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
    /// A scenario could not be loaded.
    #[cfg(feature = "io")]
    #[error(transparent)]
    Load(#[from] crate::io::scenario::LoadError),
}
