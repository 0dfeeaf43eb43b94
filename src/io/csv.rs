//! CSV tables: tidy long tables and PxWeb's wide CSV exports.
//!
//! A tidy table has one column per dimension and one value column (named `population`,
//! `value`, `count`, `rate`, `share` or `total`; otherwise the last column). A PxWeb
//! export as downloaded from Statistics Finland has a quoted title line and a blank
//! line before its header, and one value column per combination of its heading
//! variables, such as `"Miehet 2019 Väestö 31.12."`; it is turned long, with the sex,
//! year and content parsed out of each header.

use super::error::{DataError, Place};
use super::labels::{parse_number, parse_year, role_of};
use super::table::{ColumnBuilder, LongTable, Origin};
use super::text::TextEncoding;

/// Names recognised as the value column of a tidy table (case-insensitive).
pub const VALUE_NAMES: [&str; 8] = [
    "population",
    "value",
    "count",
    "rate",
    "share",
    "total",
    "väestö",
    "persons",
];

/// How to read a CSV file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// Character encoding; detected by default.
    pub encoding: TextEncoding,
    /// Field delimiter; by default the most frequent of `;`, `,` and tab in the header.
    pub delimiter: Option<u8>,
    /// The value column, by name (case-insensitive); by default the first column
    /// named like a value (see [`VALUE_NAMES`]), else the last column.
    pub value_column: Option<String>,
}

/// Reads a CSV table from its bytes. `file` names it in errors.
///
/// # Errors
/// A [`DataError`] naming the line, column and value for a row with the wrong number
/// of fields, a value that is not a number, or a file with no header.
pub fn read(bytes: &[u8], file: &str, opts: &CsvOptions) -> Result<LongTable, DataError> {
    if bytes.contains(&0) {
        return Err(DataError::file(
            file,
            "the file holds NUL bytes: it is not a text (CSV) file",
        ));
    }
    let text = opts.encoding.decode(bytes, file)?;
    let (body, skipped_lines) = skip_title(&text);
    let header_line = body.lines().next().unwrap_or("");
    if header_line.trim().is_empty() {
        return Err(DataError::file(file, "the file has no header line"));
    }
    let delimiter = opts
        .delimiter
        .unwrap_or_else(|| sniff_delimiter(header_line));
    let comma_decimal = delimiter != b',';
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_bytes());
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(body.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    // One record read into again and again, the header first (no allocation a row).
    let mut rec = ::csv::StringRecord::new();
    match reader.read_record(&mut rec) {
        Ok(true) => {}
        Err(e) => return Err(csv_error(file, &e, skipped_lines)),
        Ok(false) => return Err(DataError::file(file, "the file has no header line")),
    }
    let names: Vec<String> = rec.iter().map(|h| h.trim().to_string()).collect();
    check_header(file, &names, skipped_lines + 1)?;
    let layout = Layout::of(&names, opts.value_column.as_deref()).ok_or_else(|| {
        DataError::at(
            file,
            Place::Line(skipped_lines + 1),
            format!(
                "no column is named `{}`",
                opts.value_column.as_deref().unwrap_or_default()
            ),
        )
    })?;
    let ncol = names.len();

    let mut dims: Vec<ColumnBuilder> = layout
        .dims
        .iter()
        .map(|&i| ColumnBuilder::new(names[i].clone()))
        .collect();
    let mut wide_dims = [
        ColumnBuilder::new("sex"),
        ColumnBuilder::new("year"),
        ColumnBuilder::new("content"),
    ];
    let mut values = Vec::new();
    let mut lines = Vec::new();
    let mut value_idx: Vec<u16> = Vec::new();
    let mut wide_codes: Vec<[u32; 3]> = Vec::new();
    while reader
        .read_record(&mut rec)
        .map_err(|e| csv_error(file, &e, skipped_lines))?
    {
        let line = line_of(body, &line_starts, rec.position()) + skipped_lines;
        if rec.len() == 1 && rec[0].trim().is_empty() {
            continue;
        }
        if rec.len() != ncol {
            return Err(DataError::at(
                file,
                Place::Line(line),
                format!("the row has {} fields but the header has {ncol}", rec.len()),
            ));
        }
        let parse = |col: usize| {
            parse_number(&rec[col], comma_decimal).map_err(|e| {
                DataError::at(file, Place::Line(line), e.problem())
                    .column(names[col].clone())
                    .value(rec[col].to_string())
            })
        };
        match &layout.wide {
            None => {
                for (b, &i) in dims.iter_mut().zip(&layout.dims) {
                    b.push(rec[i].trim());
                }
                values.push(parse(layout.value)?);
                lines.push(line);
            }
            Some(wide) => {
                // The row's dimensions are coded once for all its value columns, and
                // each value column's sex, year and content once for the file (in
                // the order the first row meets them, so the levels are as before).
                let codes: Vec<u32> = dims
                    .iter_mut()
                    .zip(&layout.dims)
                    .map(|(b, &i)| b.code(rec[i].trim()))
                    .collect();
                if wide_codes.is_empty() {
                    for w in wide.iter() {
                        wide_codes.push([
                            wide_dims[0].code(&w.sex),
                            wide_dims[1].code(&w.year),
                            wide_dims[2].code(&w.content),
                        ]);
                    }
                }
                for (k, w) in wide.iter().enumerate() {
                    for (b, c) in dims.iter_mut().zip(&codes) {
                        b.push_code(*c);
                    }
                    for (b, c) in wide_dims.iter_mut().zip(wide_codes[k]) {
                        b.push_code(c);
                    }
                    values.push(parse(w.column)?);
                    lines.push(line);
                    value_idx.push(k as u16);
                }
            }
        }
    }
    let mut columns: Vec<_> = dims.into_iter().map(ColumnBuilder::finish).collect();
    let (value_name, value_columns) = match layout.wide {
        None => (names[layout.value].clone(), None),
        Some(wide) => {
            let [sex, year, content] = wide_dims;
            if wide.iter().any(|w| !w.sex.is_empty()) {
                columns.push(sex.finish());
            }
            columns.push(year.finish());
            columns.push(content.finish());
            let headers = wide.iter().map(|w| names[w.column].clone()).collect();
            ("value".to_string(), Some((headers, value_idx)))
        }
    };
    Ok(LongTable {
        source: file.to_string(),
        columns,
        value_name,
        values,
        status: None,
        origin: Origin::Lines {
            lines,
            value_columns,
        },
    })
}

/// The line (from 1) a record starts on, from its byte offset. The reader may place a
/// record at the line break ending the previous one, so line breaks are skipped first.
fn line_of(body: &str, line_starts: &[usize], pos: Option<&::csv::Position>) -> u64 {
    let Some(p) = pos else { return 0 };
    let mut b = usize::try_from(p.byte())
        .unwrap_or(usize::MAX)
        .min(body.len());
    while matches!(body.as_bytes().get(b), Some(b'\r' | b'\n')) {
        b += 1;
    }
    line_starts.partition_point(|s| *s <= b) as u64
}

/// Reads two text columns of a CSV table, e.g. `area,parent`: one pair per row, with
/// its line.
///
/// # Errors
/// A [`DataError`] if a column is missing or a row cannot be read.
pub fn read_pairs(
    bytes: &[u8],
    file: &str,
    key: &str,
    value: &str,
) -> Result<Vec<(String, String, u64)>, DataError> {
    let text = TextEncoding::Detect.decode(bytes, file)?;
    let header_line = text.lines().next().unwrap_or("");
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(header_line))
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        _ => return Err(DataError::file(file, "the file has no header line")),
    };
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| DataError::file(file, format!("no `{name}` column")))
    };
    let (k, v) = (find(key)?, find(value)?);
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut out = Vec::new();
    for rec in records {
        let rec = rec.map_err(|e| csv_error(file, &e, 0))?;
        let line = line_of(&text, &line_starts, rec.position());
        match (rec.get(k), rec.get(v)) {
            (Some(a), Some(b)) => out.push((a.trim().to_string(), b.trim().to_string(), line)),
            _ if rec.iter().all(|f| f.trim().is_empty()) => {}
            _ => {
                return Err(DataError::at(
                    file,
                    Place::Line(line),
                    format!("the row lacks the `{key}` or `{value}` column"),
                ))
            }
        }
    }
    Ok(out)
}

fn csv_error(file: &str, e: &::csv::Error, skipped: u64) -> DataError {
    let line = e.position().map_or(0, |p| p.line()) + skipped;
    let problem = match e.kind() {
        ::csv::ErrorKind::Utf8 { .. } => "the text is not valid UTF-8".to_string(),
        _ => format!("cannot read the CSV row ({e})"),
    };
    if line > 0 {
        DataError::at(file, Place::Line(line), problem)
    } else {
        DataError::file(file, problem)
    }
}

fn check_header(file: &str, names: &[String], line: u64) -> Result<(), DataError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if n.is_empty() {
            return Err(DataError::at(
                file,
                Place::Line(line),
                "a column of the header has no name",
            ));
        }
        if !seen.insert(n.to_lowercase()) {
            return Err(DataError::at(
                file,
                Place::Line(line),
                "the column name appears twice in the header",
            )
            .column(n.clone()));
        }
    }
    if names.len() < 2 {
        return Err(DataError::at(
            file,
            Place::Line(line),
            "the header has a single column; is the delimiter right? (`,`, `;` and tab are detected)",
        )
        .value(names.first().cloned().unwrap_or_default()));
    }
    Ok(())
}

/// Skips a PxWeb title line (a single quoted field) followed by a blank line. Returns
/// the rest and how many lines were skipped.
fn skip_title(text: &str) -> (&str, u64) {
    let mut rest = text;
    let mut skipped = 0;
    // Leading blank lines.
    while let Some(nl) = rest.find('\n') {
        if rest[..nl].trim().is_empty() {
            rest = &rest[nl + 1..];
            skipped += 1;
        } else {
            break;
        }
    }
    let mut it = rest.splitn(3, '\n');
    if let (Some(first), Some(second)) = (it.next(), it.next()) {
        let f = first.trim();
        let single_quoted = f.len() >= 2
            && f.starts_with('"')
            && f.ends_with('"')
            && f[1..f.len() - 1].matches('"').count() == 0;
        if single_quoted && second.trim().is_empty() {
            let cut = first.len() + 1 + second.len() + 1;
            return (rest.get(cut..).unwrap_or(""), skipped + 2);
        }
    }
    (rest, skipped)
}

fn sniff_delimiter(header: &str) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for b in header.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b';' if !quoted => counts[0] += 1,
            b',' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let delims = [b';', b',', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], i == 1)).unwrap_or(1);
    if counts[best] == 0 {
        b','
    } else {
        delims[best]
    }
}

/// A PxWeb wide value column: its position and what its header says.
struct WideColumn {
    column: usize,
    sex: String,
    year: String,
    content: String,
}

struct Layout {
    dims: Vec<usize>,
    value: usize,
    wide: Option<Vec<WideColumn>>,
}

impl Layout {
    /// The layout of a header; `None` if the requested value column is not there.
    fn of(names: &[String], value_column: Option<&str>) -> Option<Layout> {
        if let Some(v) = value_column {
            let value = names.iter().position(|n| n.eq_ignore_ascii_case(v))?;
            return Some(Layout {
                dims: (0..names.len()).filter(|&i| i != value).collect(),
                value,
                wide: None,
            });
        }
        let wide: Vec<WideColumn> = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                parse_wide_header(n).map(|(sex, year, content)| WideColumn {
                    column: i,
                    sex,
                    year,
                    content,
                })
            })
            .collect();
        if !wide.is_empty() {
            let dims = (0..names.len())
                .filter(|i| !wide.iter().any(|w| w.column == *i))
                .collect();
            return Some(Layout {
                dims,
                value: 0,
                wide: Some(wide),
            });
        }
        let value = names
            .iter()
            .position(|n| VALUE_NAMES.contains(&n.to_lowercase().as_str()))
            .unwrap_or(names.len() - 1);
        Some(Layout {
            dims: (0..names.len()).filter(|&i| i != value).collect(),
            value,
            wide: None,
        })
    }
}

/// `"Miehet 2019 Väestö 31.12."` → (`Miehet`, `2019`, `Väestö 31.12.`). A header is a
/// wide value column when one of its words is a year and it is not itself a dimension
/// name.
fn parse_wide_header(h: &str) -> Option<(String, String, String)> {
    if role_of(h).is_some() {
        return None;
    }
    let words: Vec<&str> = h.split_whitespace().collect();
    let k = words.iter().position(|w| parse_year(w).is_some())?;
    if words.len() < 2 {
        return None;
    }
    Some((
        words[..k].join(" "),
        words[k].to_string(),
        words[k + 1..].join(" "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_semicolon_csv_with_decimal_comma() {
        let t = read(
            b"area;sex;age;year;population\n091;1;0;2024;12,5\n",
            "p.csv",
            &CsvOptions::default(),
        )
        .unwrap();
        assert_eq!(t.columns.len(), 4);
        assert_eq!(t.columns[0].get(0), "091");
        assert_eq!(t.values, [Some(12.5)]);
        assert_eq!(t.place(0), Place::Line(2));
    }

    #[test]
    fn pxweb_export_is_melted() {
        let raw = "\"11re -- title\"\r\n\r\n\"Alue\";\"Ikä\";\"Miehet 2019 Väestö 31.12.\";\"Naiset 2019 Väestö 31.12.\"\r\n\"Akaa\";\"0\";45;40\r\n";
        let t = read(raw.as_bytes(), "x.csv", &CsvOptions::default()).unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Alue", "Ikä", "sex", "year", "content"]);
        assert_eq!(t.values, [Some(45.0), Some(40.0)]);
        assert_eq!(t.columns[2].get(1), "Naiset");
        assert_eq!(t.place(1), Place::Line(4));
        assert_eq!(t.value_column(1), "Naiset 2019 Väestö 31.12.");
    }

    #[test]
    fn bad_number_names_line_column_value() {
        let e = read(b"a,value\nx,1\ny,abc\n", "f.csv", &CsvOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: line 3, column `value`, value `abc`: not a number"
        );
        let e = read(b"a,value\nx,1,2\n", "f.csv", &CsvOptions::default()).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
