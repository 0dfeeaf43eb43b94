//! Reading values out of a run's tables for the report: rows picked by their keys and
//! summed by year.

use crate::io::{ColumnData, Frame};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A key column as levels and per-row codes (a text column is coded on the way).
pub(crate) struct Key<'a> {
    pub levels: Cow<'a, [String]>,
    pub codes: Cow<'a, [u32]>,
}

impl Key<'_> {
    /// The code of `value`, if any row has it.
    pub fn code(&self, value: &str) -> Option<u32> {
        self.levels
            .iter()
            .position(|l| l == value)
            .map(|i| i as u32)
    }

    /// The value of row `i`.
    pub fn get(&self, i: usize) -> &str {
        &self.levels[self.codes[i] as usize]
    }
}

/// The column `name` of `f`.
pub(crate) fn column<'a>(f: &'a Frame, name: &str) -> Option<&'a ColumnData> {
    f.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
}

/// A key column of text.
pub(crate) fn key<'a>(f: &'a Frame, name: &str) -> Option<Key<'a>> {
    match column(f, name)? {
        ColumnData::Coded { levels, codes } => Some(Key {
            levels: Cow::Borrowed(levels),
            codes: Cow::Borrowed(codes),
        }),
        ColumnData::Text(v) => {
            let mut levels: Vec<String> = Vec::new();
            let mut index = std::collections::HashMap::new();
            let codes = v
                .iter()
                .map(|s| {
                    *index.entry(s.as_str()).or_insert_with(|| {
                        levels.push(s.clone());
                        (levels.len() - 1) as u32
                    })
                })
                .collect();
            Some(Key {
                levels: Cow::Owned(levels),
                codes: Cow::Owned(codes),
            })
        }
        _ => None,
    }
}

/// A column of whole numbers.
pub(crate) fn ints<'a>(f: &'a Frame, name: &str) -> Option<&'a [i64]> {
    match column(f, name)? {
        ColumnData::Int(v) => Some(v),
        _ => None,
    }
}

/// A column of values (missing values are not a number).
pub(crate) fn floats(f: &Frame, name: &str) -> Option<Vec<f64>> {
    match column(f, name)? {
        ColumnData::Float(v) => Some(v.clone()),
        ColumnData::Int(v) => Some(v.iter().map(|x| *x as f64).collect()),
        _ => None,
    }
}

/// Rows of a table picked by their keys.
pub(crate) struct Rows<'a> {
    pub frame: &'a Frame,
    pub keep: Vec<bool>,
}

impl<'a> Rows<'a> {
    /// Every row.
    pub fn all(frame: &'a Frame) -> Rows<'a> {
        Rows {
            frame,
            keep: vec![true; frame.height()],
        }
    }

    /// Keeps the rows whose `col` is `value` (none if the table has no such column).
    pub fn eq(mut self, col: &str, value: &str) -> Rows<'a> {
        match key(self.frame, col) {
            Some(k) => match k.code(value) {
                Some(c) => {
                    for (keep, code) in self.keep.iter_mut().zip(k.codes.iter()) {
                        *keep &= *code == c;
                    }
                }
                None => self.keep.fill(false),
            },
            None => self.keep.fill(false),
        }
        self
    }

    /// Keeps the rows whose `col` is not `value`.
    pub fn ne(mut self, col: &str, value: &str) -> Rows<'a> {
        if let Some(k) = key(self.frame, col) {
            if let Some(c) = k.code(value) {
                for (keep, code) in self.keep.iter_mut().zip(k.codes.iter()) {
                    *keep &= *code != c;
                }
            }
        }
        self
    }

    /// Whether any row is kept.
    pub fn any(&self) -> bool {
        self.keep.iter().any(|k| *k)
    }

    /// The kept rows' distinct values of `col`, in the order they first appear.
    pub fn levels(&self, col: &str) -> Vec<String> {
        let Some(k) = key(self.frame, col) else {
            return Vec::new();
        };
        let mut seen = vec![false; k.levels.len()];
        let mut out = Vec::new();
        for (i, keep) in self.keep.iter().enumerate() {
            let c = k.codes[i] as usize;
            if *keep && !seen[c] {
                seen[c] = true;
                out.push(k.levels[c].clone());
            }
        }
        out
    }

    /// The kept rows' `value` summed by year.
    pub fn by_year(&self, value: &str) -> BTreeMap<i32, f64> {
        let mut out = BTreeMap::new();
        let (Some(years), Some(v)) = (ints(self.frame, "year"), floats(self.frame, value)) else {
            return out;
        };
        for (i, keep) in self.keep.iter().enumerate() {
            if *keep {
                *out.entry(years[i] as i32).or_insert(0.0) += v[i];
            }
        }
        out
    }

    /// The kept rows' `lo` and `hi` by year, divided by `scale`: a band of quantiles
    /// (years with both).
    pub fn band(&self, lo: &str, hi: &str, scale: f64) -> Vec<(i32, f64, f64)> {
        let (l, h) = (self.by_year(lo), self.by_year(hi));
        l.iter()
            .filter_map(|(y, a)| h.get(y).map(|b| (*y, a / scale, b / scale)))
            .collect()
    }

    /// The kept rows' `value` summed by `col` and year.
    pub fn by_key_year(&self, col: &str, value: &str) -> BTreeMap<(String, i32), f64> {
        let mut out = BTreeMap::new();
        let (Some(k), Some(years), Some(v)) = (
            key(self.frame, col),
            ints(self.frame, "year"),
            floats(self.frame, value),
        ) else {
            return out;
        };
        let mut sums: BTreeMap<(u32, i32), f64> = BTreeMap::new();
        for (i, keep) in self.keep.iter().enumerate() {
            if *keep {
                *sums.entry((k.codes[i], years[i] as i32)).or_insert(0.0) += v[i];
            }
        }
        for ((c, y), s) in sums {
            out.insert((k.levels[c as usize].clone(), y), s);
        }
        out
    }
}

/// Points of a series by year.
pub(crate) fn points(m: &BTreeMap<i32, f64>, scale: f64) -> Vec<(i32, f64)> {
    m.iter().map(|(y, v)| (*y, v / scale)).collect()
}

/// The series of one key out of a map by key and year.
pub(crate) fn series_of(m: &BTreeMap<(String, i32), f64>, k: &str, scale: f64) -> Vec<(i32, f64)> {
    m.iter()
        .filter(|((key, _), _)| key == k)
        .map(|((_, y), v)| (*y, v / scale))
        .collect()
}
