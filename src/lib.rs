#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod error;
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
