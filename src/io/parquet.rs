//! Parquet tables. Reading: text and whole-number columns are dimensions, the value
//! column is the one named like a value (see [`super::csv::VALUE_NAMES`]) or else the
//! last floating-point column. Writing (used by [`super::frame::Frame::write`]): dictionary
//! pages straight from kunta's coded columns, row groups encoded in parallel.

use super::csv::VALUE_NAMES;
use super::error::{DataError, IoError};
use super::frame::{ColumnData, Frame};
use super::labels::role_of;
use super::table::{ColumnBuilder, LongTable, Origin};
use polars::prelude::{DataType, ParquetReader, SerReader};

/// Reads a tidy long table from a Parquet file.
///
/// # Errors
/// [`IoError::Data`] if the bytes are not Parquet or the table has no value column.
pub fn read(bytes: Vec<u8>, file: &str) -> Result<LongTable, IoError> {
    let file = file.to_string();
    let df = ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .map_err(|e| DataError::file(&file, format!("not a readable Parquet file ({e})")))?;
    let cols = df.columns();
    let is_float = |c: &polars::prelude::Column| c.dtype().is_float();
    let value_pos = cols
        .iter()
        .position(|c| VALUE_NAMES.contains(&c.name().to_lowercase().as_str()))
        .or_else(|| {
            cols.iter()
                .rposition(|c| is_float(c) && role_of(c.name()).is_none())
        })
        .ok_or_else(|| {
            DataError::file(
                &file,
                "no value column: name one population, value, count, rate or share",
            )
        })?;
    let height = df.height();
    let bad =
        |name: &str, e: String| IoError::Data(DataError::file(&file, e).column(name.to_string()));
    let mut columns = Vec::new();
    for (k, c) in cols.iter().enumerate() {
        if k == value_pos {
            continue;
        }
        let mut b = ColumnBuilder::new(c.name().as_str());
        if c.dtype().is_integer() {
            let ints = c
                .cast(&DataType::Int64)
                .map_err(|e| bad(c.name(), e.to_string()))?;
            for v in ints.i64().map_err(|e| bad(c.name(), e.to_string()))?.iter() {
                b.push(&v.map(|x| x.to_string()).unwrap_or_default());
            }
        } else if c.dtype() == &DataType::String {
            for v in c.str().map_err(|e| bad(c.name(), e.to_string()))?.iter() {
                b.push(v.unwrap_or(""));
            }
        } else {
            return Err(bad(
                c.name(),
                format!(
                    "a dimension column must hold text or whole numbers, not {}",
                    c.dtype()
                ),
            ));
        }
        columns.push(b.finish());
    }
    let vcol = &cols[value_pos];
    if !vcol.dtype().is_primitive_numeric() {
        return Err(bad(
            vcol.name(),
            format!("the value column holds {}, not numbers", vcol.dtype()),
        ));
    }
    let floats = vcol
        .cast(&DataType::Float64)
        .map_err(|e| bad(vcol.name(), e.to_string()))?;
    let values: Vec<Option<f64>> = floats
        .f64()
        .map_err(|e| bad(vcol.name(), e.to_string()))?
        .iter()
        .collect();
    debug_assert_eq!(values.len(), height);
    Ok(LongTable {
        source: file,
        columns,
        value_name: vcol.name().to_string(),
        values,
        status: None,
        origin: Origin::Rows,
    })
}

/// Rows per row group, as polars writes them.
const ROW_GROUP: usize = 512 * 512;

/// Writes a frame as Parquet: Snappy-compressed where that pays, with
/// min/max/null-count statistics, row groups of 262,144 rows, and the Arrow schema
/// polars writes (text as `Utf8View`, whole numbers as `Int64`, values as `Float64`,
/// all nullable), so polars, pandas and arrow read it exactly as they read a table
/// polars wrote. A missing value (NaN) is a null.
///
/// Coded columns ([`ColumnData::Coded`]) and patterns ([`ColumnData::Repeat`]) go
/// straight into dictionary pages from kunta's own codes, with each row group's
/// dictionary holding only the values it uses (so its statistics are tight). Other
/// columns are dictionary-encoded where that pays, as polars does, except that a
/// column of numbers whose first 1,024 rows are mostly distinct is written plain
/// without trying; a plain chunk of numbers that Snappy does not shrink by a tenth
/// (judged on a sample) is stored uncompressed. Row groups and columns are encoded
/// and compressed in parallel and written in order, so the bytes do not depend on the
/// thread count.
pub(crate) fn write_frame(frame: &Frame, out: impl std::io::Write) -> Result<(), String> {
    use polars_arrow::datatypes::{ArrowSchema, Field};
    use polars_parquet::write::{
        fallible_streaming_iterator, to_parquet_type, CompressionOptions, DynIter,
        DynStreamingIterator, FileWriter, StatisticsOptions, Version, WriteOptions,
    };
    use rayon::prelude::*;

    let n = frame.height();
    let schema: ArrowSchema = frame
        .columns
        .iter()
        .map(|(name, c)| Field::new(name.as_str().into(), arrow_type(c), true))
        .collect();
    let types = schema
        .iter_values()
        .map(to_parquet_type)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: CompressionOptions::Snappy,
        version: Version::V1,
        data_page_size: None,
    };
    let groups: Vec<std::ops::Range<usize>> = (0..n)
        .step_by(ROW_GROUP)
        .map(|s| s..(s + ROW_GROUP).min(n))
        .collect();
    let width = frame.columns.len();
    let pages = (0..groups.len() * width)
        .into_par_iter()
        .map(|j| {
            let (g, c) = (j / width, j % width);
            encode_column(&frame.columns[c].1, groups[g].clone(), &types[c], options)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut writer = FileWriter::try_new(out, schema, options).map_err(|e| e.to_string())?;
    for (g, columns) in groups.iter().zip(pages.chunks(width.max(1))) {
        let row_group = DynIter::new(columns.iter().map(|column| {
            Ok(DynStreamingIterator::new(
                fallible_streaming_iterator::convert(column.iter().map(Ok)),
            ))
        }));
        writer
            .write(g.len() as u64, row_group)
            .map_err(|e| e.to_string())?;
    }
    writer.end(None).map_err(|e| e.to_string())?;
    Ok(())
}

/// The Arrow type a column is declared with (what readers see).
fn arrow_type(c: &ColumnData) -> polars_arrow::datatypes::ArrowDataType {
    use polars_arrow::datatypes::ArrowDataType;
    match c {
        ColumnData::Text(_) | ColumnData::Coded { .. } => ArrowDataType::Utf8View,
        ColumnData::Int(_) => ArrowDataType::Int64,
        ColumnData::Float(_) => ArrowDataType::Float64,
        ColumnData::Repeat { values, .. } => arrow_type(values),
    }
}

/// Encodes and compresses the rows `rows` of one column.
fn encode_column(
    c: &ColumnData,
    rows: std::ops::Range<usize>,
    ty: &polars_parquet::write::ParquetType,
    options: polars_parquet::write::WriteOptions,
) -> Result<Vec<polars_parquet::write::CompressedPage>, String> {
    use polars_arrow::array::{Array, PrimitiveArray, Utf8ViewArray};
    use polars_arrow::bitmap::Bitmap;
    use polars_arrow::datatypes::ArrowDataType;
    use polars_parquet::write::{array_to_columns, compress, CompressionOptions, Encoding, Page};

    let range = rows.clone();
    let array: Box<dyn Array> = match c {
        ColumnData::Text(v) => Utf8ViewArray::from_slice_values(&v[rows]).boxed(),
        ColumnData::Int(v) => PrimitiveArray::<i64>::from_slice(&v[rows]).boxed(),
        ColumnData::Float(v) => {
            // A missing value (NaN) is a null over a zero, as Arrow writes one.
            let v = &v[rows];
            let values: Vec<f64> = v
                .iter()
                .map(|x| if x.is_nan() { 0.0 } else { *x })
                .collect();
            let validity = v
                .iter()
                .any(|x| x.is_nan())
                .then(|| v.iter().map(|x| !x.is_nan()).collect::<Bitmap>());
            PrimitiveArray::new(ArrowDataType::Float64, values.into(), validity).boxed()
        }
        ColumnData::Coded { levels, codes } => coded_array(levels, &codes[rows])?,
        ColumnData::Repeat { values, each, .. } => match pattern_dictionary(values, *each, rows) {
            Some(array) => array?,
            None => {
                let own: Vec<usize> =
                    super::frame::repeat_rows(values.len(), *each, range.clone()).collect();
                return encode_column(&values.pick(&own), 0..own.len(), ty, options);
            }
        },
    };
    // A column of numbers that are nearly all different is not worth a dictionary:
    // judged on its first rows, so the whole column is not hashed only to find out.
    let encoding = match c {
        ColumnData::Float(v) if mostly_distinct(&v[range]) => Encoding::Plain,
        _ => Encoding::RleDictionary,
    };
    let mut pages = Vec::new();
    for column in
        array_to_columns(array, ty.clone(), options, &[encoding]).map_err(|e| e.to_string())?
    {
        for page in column {
            pages.push(page.map_err(|e| e.to_string())?);
        }
    }
    // Snappy where it pays: plain numbers (a model's results in full precision) hardly
    // shrink, so a column chunk whose sample does not shrink by a tenth is stored as it is.
    let compression = match pages.first() {
        Some(Page::Data(page)) if encoding == Encoding::Plain && !shrinks(page.buffer()) => {
            CompressionOptions::Uncompressed
        }
        _ => options.compression,
    };
    pages
        .into_iter()
        .map(|page| compress(page, Vec::new(), compression).map_err(|e| e.to_string()))
        .collect()
}

/// Whether most of the first rows of `v` (up to 1,024) differ from each other: more
/// than three in four distinct, the share above which polars writes numbers plain
/// (polars judges the whole chunk by an estimate; this judges its first rows).
fn mostly_distinct(v: &[f64]) -> bool {
    if v.len() <= 128 {
        return false;
    }
    let mut bits: Vec<u64> = v[..v.len().min(1024)].iter().map(|x| x.to_bits()).collect();
    let n = bits.len();
    bits.sort_unstable();
    bits.dedup();
    bits.len() * 4 > n * 3
}

/// Whether Snappy shrinks a sample of a page (its last 64 KiB, mostly values) by more
/// than a tenth.
fn shrinks(page: &[u8]) -> bool {
    use polars_parquet::parquet::compression::compress;
    let sample = &page[page.len().saturating_sub(64 << 10)..];
    let mut out = Vec::new();
    match compress(
        polars_parquet::write::CompressionOptions::Snappy,
        sample,
        &mut out,
    ) {
        Ok(()) => out.len() * 10 < sample.len() * 9,
        Err(_) => true,
    }
}

/// Text rows as a dictionary array: row `i` is `levels[codes[i]]`. The dictionary
/// holds the levels the rows use, in level order.
fn coded_array(
    levels: &[String],
    codes: &[u32],
) -> Result<Box<dyn polars_arrow::array::Array>, String> {
    let (new_code, dictionary) = used_levels(levels, codes.iter().copied());
    let keys = codes.iter().map(|&k| new_code[k as usize]).collect();
    dictionary_array(keys, dictionary)
}

/// The levels among `levels` that the codes `used` name, in level order, as a text
/// array, and each level's code in it (levels not used get `u32::MAX`).
fn used_levels(
    levels: &[String],
    used: impl Iterator<Item = u32>,
) -> (Vec<u32>, Box<dyn polars_arrow::array::Array>) {
    use polars_arrow::array::Utf8ViewArray;
    let mut new_code = vec![u32::MAX; levels.len()];
    for k in used {
        new_code[k as usize] = 0;
    }
    let mut kept = Vec::new();
    for (k, slot) in new_code.iter_mut().enumerate() {
        if *slot == 0 {
            *slot = kept.len() as u32;
            kept.push(levels[k].as_str());
        }
    }
    (new_code, Utf8ViewArray::from_slice_values(&kept).boxed())
}

/// Keys of text values (`levels[codes[j]]` for the value `j`) into a dictionary of the
/// levels the `used` values take, in level order.
fn text_keys(
    levels: &[String],
    codes: &[u32],
    used: &[bool],
) -> (Vec<u32>, Box<dyn polars_arrow::array::Array>) {
    let taken = codes.iter().zip(used).filter(|(_, u)| **u).map(|(c, _)| *c);
    let (new_code, dictionary) = used_levels(levels, taken);
    (
        codes.iter().map(|c| new_code[*c as usize]).collect(),
        dictionary,
    )
}

/// A dictionary array of `keys` into `dictionary`.
fn dictionary_array(
    keys: Vec<u32>,
    dictionary: Box<dyn polars_arrow::array::Array>,
) -> Result<Box<dyn polars_arrow::array::Array>, String> {
    use polars_arrow::array::{DictionaryArray, PrimitiveArray};
    use polars_arrow::datatypes::{ArrowDataType, IntegerType};
    let dtype = ArrowDataType::Dictionary(
        IntegerType::UInt32,
        Box::new(dictionary.dtype().clone()),
        false,
    );
    DictionaryArray::<u32>::try_new(dtype, PrimitiveArray::from_vec(keys), dictionary)
        .map(|d| d.boxed())
        .map_err(|e| e.to_string())
}

/// The rows `rows` of a pattern over `values` (see [`ColumnData::Repeat`]) as a
/// dictionary array, its dictionary the values those rows use: text in the order of
/// its levels (as [`coded_array`] writes them), whole numbers in increasing order (as
/// polars writes a column of few whole numbers). Each of the pattern's values is given
/// its key once, then the rows take them in one pass. `None` for a pattern of numbers.
fn pattern_dictionary(
    values: &ColumnData,
    each: usize,
    rows: std::ops::Range<usize>,
) -> Option<Result<Box<dyn polars_arrow::array::Array>, String>> {
    use polars_arrow::array::{Array, PrimitiveArray};
    let n = values.len();
    if n == 0 {
        return None;
    }
    // The pattern's values these rows take: a run of them, around the end and back.
    let mut used = vec![false; n];
    if rows.len() >= n * each.max(1) {
        used.fill(true);
    } else if !rows.is_empty() {
        for q in rows.start / each.max(1)..=(rows.end - 1) / each.max(1) {
            used[q % n] = true;
        }
    }
    let (key, dictionary): (Vec<u32>, Box<dyn Array>) = match values {
        ColumnData::Coded { levels, codes } => text_keys(levels, codes, &used),
        ColumnData::Text(v) => text_keys(v, &(0..n as u32).collect::<Vec<_>>(), &used),
        ColumnData::Int(v) => {
            let mut kept: Vec<i64> = v
                .iter()
                .zip(&used)
                .filter(|(_, u)| **u)
                .map(|(x, _)| *x)
                .collect();
            kept.sort_unstable();
            kept.dedup();
            (
                v.iter()
                    .map(|x| kept.partition_point(|u| u < x) as u32)
                    .collect(),
                PrimitiveArray::<i64>::from_vec(kept).boxed(),
            )
        }
        _ => return None,
    };
    let keys: Vec<u32> = super::frame::repeat_rows(n, each, rows)
        .map(|j| key[j])
        .collect();
    Some(dictionary_array(keys, dictionary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{DataType, ParquetReader, SerReader};

    /// More rows than a row group, every column kind, a missing value, and coded levels
    /// that are unused or used only in the second row group.
    #[test]
    fn written_frames_read_back_as_strings_ints_and_floats() {
        let n = ROW_GROUP + 1000;
        let levels: Vec<String> = ["unused", "b", "a", "late"].map(String::from).to_vec();
        let codes: Vec<u32> = (0..n)
            .map(|i| {
                if i >= ROW_GROUP + 500 {
                    3
                } else {
                    1 + (i % 2) as u32
                }
            })
            .collect();
        let text: Vec<String> = (0..n).map(|i| format!("t{}", i % 7)).collect();
        let ints: Vec<i64> = (0..n as i64).map(|i| i - 5).collect();
        let floats: Vec<Option<f64>> = (0..n)
            .map(|i| (i != 17).then_some(i as f64 * 0.5))
            .collect();
        let nan_missing: Vec<f64> = floats.iter().map(|x| x.unwrap_or(f64::NAN)).collect();
        let frame = Frame {
            columns: vec![
                (
                    "area".into(),
                    ColumnData::Coded {
                        levels: levels.clone(),
                        codes: codes.clone(),
                    },
                ),
                ("text".into(), ColumnData::Text(text.clone())),
                ("n".into(), ColumnData::Int(ints.clone())),
                ("v".into(), ColumnData::Float(nan_missing)),
            ],
        };
        let mut bytes = Vec::new();
        write_frame(&frame, &mut bytes).unwrap();
        let df = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert_eq!(df.height(), n);
        let dtypes: Vec<DataType> = df.columns().iter().map(|c| c.dtype().clone()).collect();
        assert_eq!(
            dtypes,
            [
                DataType::String,
                DataType::String,
                DataType::Int64,
                DataType::Float64
            ]
        );
        let area: Vec<&str> = df.columns()[0].str().unwrap().iter().flatten().collect();
        assert!(area
            .iter()
            .zip(&codes)
            .all(|(a, &k)| *a == levels[k as usize]));
        let t: Vec<&str> = df.columns()[1].str().unwrap().iter().flatten().collect();
        assert_eq!(t, text);
        let i: Vec<i64> = df.columns()[2].i64().unwrap().into_no_null_iter().collect();
        assert_eq!(i, ints);
        let v: Vec<Option<f64>> = df.columns()[3].f64().unwrap().iter().collect();
        assert_eq!(v, floats);
    }

    /// Pattern columns (text, whole numbers and coded text, a row group starting in
    /// the middle of a run) read back as the columns they stand for: the same rows as
    /// the columns written out and coded give.
    #[test]
    fn patterns_read_back_as_their_rows() {
        let n = 2 * ROW_GROUP + 321;
        let patterns = [
            (
                "scenario",
                ColumnData::repeat(ColumnData::Text(vec!["base".into()]), n, n),
            ),
            (
                "area",
                ColumnData::repeat(
                    ColumnData::Text((0..7).map(|a| format!("KU{a:03}")).collect()),
                    1000,
                    n,
                ),
            ),
            (
                "age",
                ColumnData::repeat(ColumnData::Int((0..101).rev().collect()), 31, n),
            ),
            (
                "year",
                ColumnData::repeat(ColumnData::Int((2019..2050).collect()), 1, n),
            ),
            (
                "sex",
                ColumnData::repeat(
                    ColumnData::Coded {
                        levels: vec!["female".into(), "male".into(), "unused".into()],
                        codes: vec![1, 0],
                    },
                    3131,
                    n,
                ),
            ),
        ];
        let frame = Frame {
            columns: patterns
                .iter()
                .map(|(name, c)| (name.to_string(), c.clone()))
                .collect(),
        };
        let written_out = frame.expanded().into_owned();
        assert!(written_out
            .columns
            .iter()
            .all(|(_, c)| !matches!(c, ColumnData::Repeat { .. })));
        assert_eq!(frame, written_out);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_frame(&frame, &mut a).unwrap();
        let df = ParquetReader::new(std::io::Cursor::new(a.clone()))
            .finish()
            .unwrap();
        assert_eq!(df.height(), n);
        let age: Vec<i64> = df.columns()[2].i64().unwrap().into_no_null_iter().collect();
        let ColumnData::Int(want) = &written_out.columns[2].1 else {
            panic!("ages are whole numbers")
        };
        assert_eq!(&age, want);
        let area: Vec<&str> = df.columns()[1].str().unwrap().iter().flatten().collect();
        assert_eq!(area[999], "KU000");
        assert_eq!(area[1000], "KU001");
        assert_eq!(area[7000], "KU000");
        let sex: Vec<&str> = df.columns()[4].str().unwrap().iter().flatten().collect();
        assert_eq!((sex[0], sex[3131], sex[6262]), ("male", "female", "male"));
        let years: Vec<i64> = df.columns()[3].i64().unwrap().into_no_null_iter().collect();
        assert_eq!(
            (years[0], years[30], years[31], years[n - 1]),
            (2019, 2049, 2019, 2019 + ((n - 1) % 31) as i64)
        );
        // The columns written out, text coded, read back the same.
        let coded = Frame {
            columns: written_out
                .columns
                .iter()
                .map(|(name, c)| {
                    let c = match c {
                        ColumnData::Text(v) => {
                            let mut levels: Vec<String> = v.clone();
                            levels.dedup();
                            levels.sort();
                            levels.dedup();
                            let codes = v
                                .iter()
                                .map(|x| levels.binary_search(x).unwrap() as u32)
                                .collect();
                            ColumnData::Coded { levels, codes }
                        }
                        other => other.clone(),
                    };
                    (name.clone(), c)
                })
                .collect(),
        };
        write_frame(&coded, &mut b).unwrap();
        let df_b = ParquetReader::new(std::io::Cursor::new(b))
            .finish()
            .unwrap();
        assert!(df.equals_missing(&df_b));
    }

    /// A column of numbers nearly all different is written plain and, where Snappy
    /// would not shrink it, uncompressed; one of few values as a dictionary. Both read
    /// back exactly.
    #[test]
    fn numbers_are_encoded_where_it_pays() {
        let n = 5000;
        let distinct: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5).ln() * 1e3).collect();
        let few: Vec<f64> = (0..n).map(|i| (i % 4) as f64).collect();
        assert!(mostly_distinct(&distinct));
        assert!(!mostly_distinct(&few));
        let frame = Frame {
            columns: vec![
                ("a".into(), ColumnData::Float(distinct.clone())),
                ("b".into(), ColumnData::Float(few.clone())),
            ],
        };
        let mut bytes = Vec::new();
        write_frame(&frame, &mut bytes).unwrap();
        let df = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        let a: Vec<f64> = df.columns()[0].f64().unwrap().into_no_null_iter().collect();
        let b: Vec<f64> = df.columns()[1].f64().unwrap().into_no_null_iter().collect();
        assert_eq!(a, distinct);
        assert_eq!(b, few);
        // A sample of repeated bytes shrinks; one of full-precision numbers does not.
        let raw: Vec<u8> = distinct.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert!(!shrinks(&raw));
        assert!(shrinks(&vec![0u8; 70_000]));
    }

    /// Row groups and columns are encoded in parallel: the bytes must not depend on it.
    #[test]
    fn the_bytes_do_not_depend_on_the_threads() {
        let n = 2 * ROW_GROUP + 7;
        let frame = Frame {
            columns: vec![
                (
                    "area".into(),
                    ColumnData::Coded {
                        levels: (0..50).map(|a| format!("{a:03}")).collect(),
                        codes: (0..n).map(|i| (i / 9000) as u32 % 50).collect(),
                    },
                ),
                ("n".into(), ColumnData::Int((0..n as i64).collect())),
                (
                    "v".into(),
                    ColumnData::Float((0..n).map(|i| (i as f64).sqrt()).collect()),
                ),
            ],
        };
        let bytes = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let mut b = Vec::new();
                    write_frame(&frame, &mut b).unwrap();
                    b
                })
        };
        let one = bytes(1);
        assert_eq!(one, bytes(2));
        assert_eq!(one, bytes(3));
    }

    #[test]
    fn an_empty_frame_writes_a_readable_file() {
        let frame = Frame {
            columns: vec![
                ("area".into(), ColumnData::Text(Vec::new())),
                ("v".into(), ColumnData::Float(Vec::new())),
            ],
        };
        let mut bytes = Vec::new();
        write_frame(&frame, &mut bytes).unwrap();
        let df = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert_eq!(df.height(), 0);
        assert_eq!(df.width(), 2);
    }
}
