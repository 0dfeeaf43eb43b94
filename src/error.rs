//! The crate-level error.

/// Any error kunta reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A population cube could not be built.
    #[error(transparent)]
    Population(#[from] crate::population::PopulationError),
    /// A rate table could not be built from its rows.
    #[error(transparent)]
    Rates(#[from] crate::rates::RateError),
    /// A projection's inputs do not fit the population.
    #[error(transparent)]
    Inputs(#[from] crate::projection::InputError),
    /// A service does not fit the population or its own numbers.
    #[error(transparent)]
    Service(#[from] crate::services::ServiceError),
    /// A service network could not be built.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
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
