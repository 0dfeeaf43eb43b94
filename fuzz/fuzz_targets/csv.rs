//! Fuzzes the csv reader and, where it gives a table, the way to a population: any
//! input must give a table or an error, never a panic, a hang or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = kunta::io::csv::read(data, "fuzz.csv", &kunta::io::CsvOptions::default()) {
        let _ = kunta::io::to_population(&table);
        let _ = kunta::io::Frame::from_long_table(&table);
    }
});
