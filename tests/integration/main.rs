//! Integration tests: one test binary (each links polars), in modules.

mod cli;
mod estimate;
mod real_data;
mod report;
