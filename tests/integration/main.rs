//! Integration tests: one test binary (each links polars), in modules.

mod cli;
mod real_data;
mod report;
