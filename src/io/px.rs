//! PC-Axis (`.px`) files, the format of Statistics Finland's PxWeb tables.
//!
//! A PX file is a list of `KEYWORD[lang]("sub","keys")=value;` statements ending in
//! `DATA=`, followed by the cube's values. What the reader handles:
//! - `CHARSET`/`CODEPAGE` (UTF-8, ISO-8859-1/15, Windows-1252);
//! - values spread over several lines, and strings continued on the next line
//!   (`"first part"` newline `"second part"` is one string), as in `NOTE` and `TITLE`;
//! - multilingual keywords (`TITLE[fr]=`, `VALUES[en]("…")=`): the default language is
//!   read, translations are skipped;
//! - `CODES` (used as the dimension's values, with `VALUES` as labels), `TIMEVAL`;
//! - missing-value symbols in `DATA` (`".."`, `"."`, `"-"`, …), read as missing;
//! - `;` and `,` between `DATA` values, which some producers write;
//! - `STUB` then `HEADING` variables, the last heading variable varying fastest.
//!
//! The declared size of the cube is checked against the length of the `DATA` section
//! before anything is allocated: every value takes at least two bytes.

use super::error::{DataError, Place};
use super::labels::{parse_number, NotANumber};
use super::table::{cube_columns, CubeDim, LongTable, Origin};
use super::text::TextEncoding;

/// The most cells a PX or JSON-stat cube may have (2 × 10⁸).
pub const MAX_CELLS: u64 = 200_000_000;

/// One `KEYWORD[lang]("sub")=value;` statement.
#[derive(Debug)]
struct Statement {
    key: String,
    lang: Option<String>,
    subkeys: Vec<String>,
    items: Vec<Item>,
    line: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Quoted(String),
    Bare(String),
}

impl Item {
    fn text(&self) -> &str {
        match self {
            Item::Quoted(s) | Item::Bare(s) => s,
        }
    }
}

/// Reads a PX file from its bytes. `file` names it in errors.
///
/// # Errors
/// A [`DataError`] naming the line or keyword for a file with no `DATA`, a statement
/// that cannot be parsed, a variable without `VALUES`, `CODES` of the wrong length, a
/// cube larger than its `DATA` could hold, or `DATA` with too few or too many values
/// or a value that is not a number or a missing-value symbol.
pub fn read(bytes: &[u8], file: &str) -> Result<LongTable, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let (header, data_start) = split_header(bytes).ok_or_else(|| {
        DataError::file(
            file,
            "no `DATA=` keyword found: the file is truncated or is not a PC-Axis file",
        )
    })?;
    let raw = statements(header, file)?;
    let encoding = encoding_of(&raw, file)?;
    let mut stmts = Vec::with_capacity(raw.len());
    for (bytes, line) in raw {
        let text = encoding.decode(bytes, file)?;
        stmts.push(parse_statement(&text, line, file)?);
    }
    let language = stmts
        .iter()
        .find(|s| s.key == "LANGUAGE" && s.lang.is_none())
        .and_then(|s| s.items.first())
        .map(|i| i.text().to_string());
    let default_lang = |s: &Statement| s.lang.is_none() || s.lang == language;
    let find = |key: &str, sub: Option<&str>| {
        stmts.iter().find(|s| {
            s.key == key
                && default_lang(s)
                && match sub {
                    None => true,
                    Some(v) => s.subkeys.first().map(String::as_str) == Some(v),
                }
        })
    };
    if stmts.iter().any(|s| s.key == "KEYS") {
        return Err(DataError::at(
            file,
            Place::Key("KEYS".into()),
            "sparse PX files (with KEYS) are not supported; export the table without KEYS",
        ));
    }
    let names = |key: &str| -> Vec<String> {
        find(key, None)
            .map(|s| s.items.iter().map(|i| i.text().to_string()).collect())
            .unwrap_or_default()
    };
    let variables: Vec<String> = names("STUB").into_iter().chain(names("HEADING")).collect();
    if variables.is_empty() {
        return Err(DataError::file(
            file,
            "neither STUB nor HEADING names a variable",
        ));
    }
    let mut dims = Vec::with_capacity(variables.len());
    for var in &variables {
        let key = format!("VALUES(\"{var}\")");
        let values: Vec<String> = find("VALUES", Some(var))
            .ok_or_else(|| {
                DataError::at(file, Place::Key(key.clone()), "the variable has no VALUES")
                    .column(var.clone())
            })?
            .items
            .iter()
            .map(|i| i.text().to_string())
            .collect();
        if values.is_empty() {
            return Err(DataError::at(file, Place::Key(key), "VALUES is empty").column(var.clone()));
        }
        let codes = match find("CODES", Some(var)) {
            Some(c) => {
                let codes: Vec<String> = c.items.iter().map(|i| i.text().to_string()).collect();
                if codes.len() != values.len() {
                    return Err(DataError::at(
                        file,
                        Place::Line(c.line),
                        format!(
                            "CODES has {} entries but VALUES has {}",
                            codes.len(),
                            values.len()
                        ),
                    )
                    .column(var.clone()));
                }
                Some(codes)
            }
            None => None,
        };
        dims.push(match codes {
            Some(codes) => CubeDim {
                name: var.clone(),
                label: None,
                codes,
                labels: Some(values),
            },
            None => CubeDim {
                name: var.clone(),
                label: None,
                codes: values,
                labels: None,
            },
        });
    }
    let data = &bytes[data_start..];
    let cells = checked_cells(dims.iter().map(|d| d.codes.len() as u64), data.len() as u64)
        .map_err(|p| DataError::at(file, Place::Key("DATA".into()), p))?;
    let data_line = 1 + bytes[..data_start].iter().filter(|b| **b == b'\n').count() as u64;
    let values = parse_data(data, cells, data_line, file)?;
    Ok(LongTable {
        source: file.to_string(),
        columns: cube_columns(dims, cells),
        value_name: "value".into(),
        values,
        status: None,
        origin: Origin::Cells,
    })
}

/// Multiplies the dimension sizes, refusing a cube that overflows, exceeds
/// [`MAX_CELLS`] or could not fit in `payload_bytes` of input (each value needs at
/// least two bytes: a digit and a separator).
pub(crate) fn checked_cells(
    sizes: impl Iterator<Item = u64>,
    payload_bytes: u64,
) -> Result<usize, String> {
    let mut cells: u64 = 1;
    for s in sizes {
        cells = cells
            .checked_mul(s)
            .ok_or_else(|| "the dimensions declare more cells than can be counted".to_string())?;
    }
    if cells > MAX_CELLS {
        return Err(format!(
            "the dimensions declare {cells} cells, more than the {MAX_CELLS} kunta reads"
        ));
    }
    if cells > payload_bytes / 2 + 1 {
        return Err(format!(
            "the dimensions declare {cells} cells but the data holds only {payload_bytes} bytes"
        ));
    }
    Ok(cells as usize)
}

/// Finds the `DATA=` statement outside quotes. Returns the header bytes (before
/// `DATA`) and the offset just after `DATA=`.
fn split_header(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let mut quoted = false;
    let mut stmt_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && b == b';' {
            stmt_start = i + 1;
        } else if !quoted && b == b'=' {
            let key = trim_ascii(&bytes[stmt_start..i]);
            if key == b"DATA" {
                return Some((&bytes[..stmt_start], i + 1));
            }
        }
        i += 1;
    }
    None
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Splits the header into statements (without their `;`), with the line each starts on.
fn statements<'a>(header: &'a [u8], file: &str) -> Result<Vec<(&'a [u8], u64)>, DataError> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    let mut line = 1u64;
    let mut start_line = 1u64;
    for (i, &b) in header.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' => line += 1,
            b';' if !quoted => {
                let s = &header[start..i];
                if !trim_ascii(s).is_empty() {
                    let lead = s
                        .iter()
                        .take_while(|c| c.is_ascii_whitespace())
                        .filter(|c| **c == b'\n')
                        .count() as u64;
                    out.push((s, start_line + lead));
                }
                start = i + 1;
                start_line = line;
            }
            _ => {}
        }
    }
    if !trim_ascii(&header[start..]).is_empty() {
        return Err(DataError::at(
            file,
            Place::Line(start_line),
            "a statement before DATA does not end with `;`",
        ));
    }
    Ok(out)
}

/// The header's text encoding: UTF-8 where the bytes are valid UTF-8 and hold any
/// non-ASCII character (a Latin-1/9 text almost never is), else `CODEPAGE`, else the
/// Windows code page PX calls "ANSI".
fn encoding_of(stmts: &[(&[u8], u64)], file: &str) -> Result<TextEncoding, DataError> {
    let utf8 = stmts.iter().all(|(s, _)| std::str::from_utf8(s).is_ok());
    let non_ascii = stmts.iter().any(|(s, _)| !s.is_ascii());
    if utf8 && non_ascii {
        return Ok(TextEncoding::Utf8);
    }
    for (s, line) in stmts {
        let t = trim_ascii(s);
        if let Some(rest) = t.strip_prefix(b"CODEPAGE") {
            let rest = trim_ascii(rest);
            let value = rest.strip_prefix(b"=").map(trim_ascii).unwrap_or(rest);
            let name = String::from_utf8_lossy(value).trim_matches('"').to_string();
            return name.parse::<TextEncoding>().map_err(|e| {
                DataError::at(file, Place::Line(*line), e)
                    .column("CODEPAGE")
                    .value(name)
            });
        }
    }
    Ok(if utf8 {
        TextEncoding::Utf8
    } else {
        TextEncoding::Windows1252
    })
}

fn parse_statement(text: &str, line: u64, file: &str) -> Result<Statement, DataError> {
    let err = |p: &str| {
        DataError::at(file, Place::Line(line), p.to_string())
            .value(text.trim().chars().take(40).collect::<String>())
    };
    let t = text.trim_start();
    let eq = find_unquoted(t, '=').ok_or_else(|| err("the statement has no `=`"))?;
    let (lhs, rhs) = (t[..eq].trim(), &t[eq + 1..]);
    let key_end = lhs.find(['[', '(']).unwrap_or(lhs.len());
    let key = lhs[..key_end].trim().to_string();
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(err("the keyword is not a PX keyword"));
    }
    let mut rest = lhs[key_end..].trim();
    let mut lang = None;
    if let Some(r) = rest.strip_prefix('[') {
        let close = r
            .find(']')
            .ok_or_else(|| err("a `[` after the keyword is not closed"))?;
        lang = Some(r[..close].trim().to_string());
        rest = r[close + 1..].trim();
    }
    let mut subkeys = Vec::new();
    if let Some(r) = rest.strip_prefix('(') {
        let inner = r
            .strip_suffix(')')
            .ok_or_else(|| err("a `(` after the keyword is not closed"))?;
        subkeys = parse_items(inner, line, file)?
            .into_iter()
            .map(|i| i.text().to_string())
            .collect();
    } else if !rest.is_empty() {
        return Err(err("unexpected text between the keyword and `=`"));
    }
    let items = parse_items(rhs, line, file)?;
    Ok(Statement {
        key,
        lang,
        subkeys,
        items,
        line,
    })
}

fn find_unquoted(t: &str, c: char) -> Option<usize> {
    let mut quoted = false;
    for (i, ch) in t.char_indices() {
        if ch == '"' {
            quoted = !quoted;
        } else if ch == c && !quoted {
            return Some(i);
        }
    }
    None
}

/// Parses a value list: quoted strings and bare tokens separated by commas. Quoted
/// strings separated only by white space (a line break) are one string continued.
/// `TLIST(A1, "1994"-"1996")` and similar keep their text as bare items.
fn parse_items(s: &str, line: u64, file: &str) -> Result<Vec<Item>, DataError> {
    let mut items: Vec<Item> = Vec::new();
    let mut chars = s.char_indices().peekable();
    let mut after_comma = true;
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == ',' {
            after_comma = true;
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let start = i + 1;
            let mut end = None;
            for (j, d) in chars.by_ref() {
                if d == '"' {
                    end = Some(j);
                    break;
                }
            }
            let end = end.ok_or_else(|| {
                DataError::at(file, Place::Line(line), "a quoted string is not closed")
            })?;
            let piece = &s[start..end];
            match items.last_mut() {
                Some(Item::Quoted(prev)) if !after_comma => prev.push_str(piece),
                _ => items.push(Item::Quoted(piece.to_string())),
            }
        } else {
            // A bare token runs to the next comma at depth 0 (parentheses may hold commas).
            let start = i;
            let mut depth = 0i32;
            let mut end = s.len();
            let mut quoted = false;
            for (j, d) in chars.by_ref() {
                match d {
                    '"' => quoted = !quoted,
                    '(' if !quoted => depth += 1,
                    ')' if !quoted => depth -= 1,
                    ',' if !quoted && depth <= 0 => {
                        end = j;
                        break;
                    }
                    _ => {}
                }
            }
            items.push(Item::Bare(s[start..end].trim().to_string()));
            after_comma = true;
            continue;
        }
        after_comma = false;
    }
    Ok(items)
}

/// Parses the DATA section: numbers and quoted missing-value symbols separated by
/// white space, `,` or `;`.
fn parse_data(
    data: &[u8],
    cells: usize,
    first_line: u64,
    file: &str,
) -> Result<Vec<Option<f64>>, DataError> {
    let mut values = Vec::with_capacity(cells);
    let mut line = first_line;
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        match b {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b',' | b';' => i += 1,
            b'"' => {
                let end = data[i + 1..]
                    .iter()
                    .position(|c| *c == b'"' || *c == b'\n')
                    .map(|e| i + 1 + e)
                    .filter(|&e| data[e] == b'"')
                    .ok_or_else(|| {
                        DataError::at(file, Place::Line(line), "a quoted DATA value is not closed")
                    })?;
                let tok = String::from_utf8_lossy(&data[i + 1..end]);
                push_value(&mut values, &tok, cells, line, file)?;
                i = end + 1;
            }
            _ => {
                let end = data[i..]
                    .iter()
                    .position(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',' | b';' | b'"'))
                    .map_or(data.len(), |e| i + e);
                let tok = String::from_utf8_lossy(&data[i..end]);
                push_value(&mut values, &tok, cells, line, file)?;
                i = end;
            }
        }
    }
    if values.len() < cells {
        return Err(DataError::at(
            file,
            Place::Key("DATA".into()),
            format!(
                "DATA holds {} values but the VALUES of STUB and HEADING promise {cells}; the file is truncated or its VALUES are wrong",
                values.len()
            ),
        ));
    }
    Ok(values)
}

fn push_value(
    values: &mut Vec<Option<f64>>,
    tok: &str,
    cells: usize,
    line: u64,
    file: &str,
) -> Result<(), DataError> {
    if values.len() == cells {
        return Err(DataError::at(
            file,
            Place::Line(line),
            format!("DATA holds more values than the {cells} that STUB and HEADING promise"),
        )
        .value(tok.to_string()));
    }
    let v = parse_number(tok, false).map_err(|e| {
        let problem = match e {
            NotANumber::Text => "a DATA value is neither a number nor a missing-value symbol",
            NotANumber::TooLarge => e.problem(),
        };
        DataError::at(file, Place::Line(line), problem).value(tok.to_string())
    })?;
    values.push(v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "CHARSET=\"ANSI\";\nTITLE=\"two \"\n\"lines\";\nSTUB=\"Alue\";\nHEADING=\"Vuosi\";\nVALUES(\"Alue\")=\"A;1\",\"B\";\nVALUES[en](\"Area\")=\"A\",\"B\";\nVALUES(\"Vuosi\")=\"2019\",\n\"2020\";\nTIMEVAL(\"Vuosi\")=TLIST(A1),\"2019\",\"2020\";\nDATA=\n1 2\n\"..\" 4;\n";

    #[test]
    fn reads_small_cube_with_quoted_semicolon_and_missing() {
        let t = read(SMALL.as_bytes(), "t.px").unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t.values, [Some(1.0), Some(2.0), None, Some(4.0)]);
        assert_eq!(t.columns[0].get(0), "A;1");
        assert_eq!(t.columns[1].get(1), "2020");
        assert_eq!(t.columns[0].get(2), "B");
    }

    #[test]
    fn codepage_and_utf8_detection() {
        let latin =
            b"CODEPAGE=\"iso-8859-15\";\nSTUB=\"Ik\xe4\";\nVALUES(\"Ik\xe4\")=\"0\";\nDATA=\n5;\n";
        assert_eq!(read(latin, "l.px").unwrap().columns[0].name, "Ikä");
        // Declared Latin-9 but written in UTF-8: the text decides.
        let utf8 = "CODEPAGE=\"iso-8859-15\";\nSTUB=\"Ikä\";\nVALUES(\"Ikä\")=\"0\";\nDATA=\n5;\n";
        assert_eq!(
            read(utf8.as_bytes(), "u.px").unwrap().columns[0].name,
            "Ikä"
        );
    }

    #[test]
    fn continued_strings_join() {
        let items = parse_items("\"two \"\r\n\"lines\"", 1, "f").unwrap();
        assert_eq!(items, [Item::Quoted("two lines".into())]);
        let items = parse_items("TLIST(A1, \"1994\"-\"1996\")", 1, "f").unwrap();
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn too_few_and_too_many_values() {
        let short = SMALL.replace("\"..\" 4;", "\"..\";");
        let e = read(short.as_bytes(), "t.px").unwrap_err();
        assert!(e.to_string().contains("DATA holds 3 values"), "{e}");
        let long = SMALL.replace("\"..\" 4;", "\"..\" 4 5;");
        let e = read(long.as_bytes(), "t.px").unwrap_err();
        assert!(e.to_string().contains("more values"), "{e}");
    }

    #[test]
    fn huge_declared_cube_is_refused_before_allocating() {
        let vals: Vec<String> = (0..1000).map(|i| format!("\"{i}\"")).collect();
        let list = vals.join(",");
        let px = format!(
            "STUB=\"a\",\"b\";\nHEADING=\"c\",\"d\";\nVALUES(\"a\")={list};\nVALUES(\"b\")={list};\nVALUES(\"c\")={list};\nVALUES(\"d\")={list};\nDATA=\n1 2 3;\n"
        );
        let e = read(px.as_bytes(), "big.px").unwrap_err();
        assert!(e.to_string().contains("1000000000000 cells"), "{e}");
    }
}
