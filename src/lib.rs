#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod error;

/// A hash map for lookups in the loaders' inner loops (every row of a table): the
/// standard library's SipHash defends against hostile keys that kunta's own tables
/// do not have, at several times the cost; seeded the same in every run.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
pub mod estimate;
pub mod example;
#[cfg(feature = "io")]
pub mod io;
pub mod network;
pub mod population;
pub mod projection;
pub mod rates;
#[cfg(feature = "io")]
pub mod report;
pub mod run;
pub mod scenario;
pub mod services;
pub mod uncertainty;

pub use error::Error;
pub use population::{Age, Population, Sex, Year};
