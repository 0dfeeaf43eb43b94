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

/// Writes a frame as Parquet: Snappy-compressed, with min/max/null-count statistics, row
/// groups of 262,144 rows, and the Arrow schema polars writes (text as `Utf8View`, whole
/// numbers as `Int64`, values as `Float64`, all nullable), so polars, pandas and arrow
/// read it exactly as they read a table polars wrote.
///
/// Coded columns ([`ColumnData::Coded`]) go straight into dictionary pages from kunta's
/// own codes, with each row group's dictionary holding only the values it uses (so
/// its statistics are tight); other columns are dictionary-encoded where that pays,
/// as polars does. Row groups and columns are encoded and compressed in parallel and
/// written in order, so the bytes do not depend on the thread count.
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
    }
}

/// Encodes and compresses the rows `rows` of one column.
fn encode_column(
    c: &ColumnData,
    rows: std::ops::Range<usize>,
    ty: &polars_parquet::write::ParquetType,
    options: polars_parquet::write::WriteOptions,
) -> Result<Vec<polars_parquet::write::CompressedPage>, String> {
    use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
    use polars_arrow::bitmap::Bitmap;
    use polars_arrow::datatypes::{ArrowDataType, IntegerType};
    use polars_parquet::write::{array_to_columns, compress, Encoding};

    let array: Box<dyn Array> = match c {
        ColumnData::Text(v) => Utf8ViewArray::from_slice_values(&v[rows]).boxed(),
        ColumnData::Int(v) => PrimitiveArray::<i64>::from_slice(&v[rows]).boxed(),
        ColumnData::Float(v) => {
            let v = &v[rows];
            let values: Vec<f64> = v.iter().map(|x| x.unwrap_or(0.0)).collect();
            let validity = v
                .iter()
                .any(Option::is_none)
                .then(|| v.iter().map(Option::is_some).collect::<Bitmap>());
            PrimitiveArray::new(ArrowDataType::Float64, values.into(), validity).boxed()
        }
        ColumnData::Coded { levels, codes } => {
            // The row group's own dictionary: the levels it uses, in level order.
            let codes = &codes[rows];
            let mut new_code = vec![u32::MAX; levels.len()];
            for &k in codes {
                new_code[k as usize] = 0;
            }
            let mut used = Vec::new();
            for (k, slot) in new_code.iter_mut().enumerate() {
                if *slot == 0 {
                    *slot = used.len() as u32;
                    used.push(levels[k].as_str());
                }
            }
            let keys: Vec<u32> = codes.iter().map(|&k| new_code[k as usize]).collect();
            let dtype = ArrowDataType::Dictionary(
                IntegerType::UInt32,
                Box::new(ArrowDataType::Utf8View),
                false,
            );
            DictionaryArray::<u32>::try_new(
                dtype,
                PrimitiveArray::from_vec(keys),
                Utf8ViewArray::from_slice_values(&used).boxed(),
            )
            .map_err(|e| e.to_string())?
            .boxed()
        }
    };
    let mut out = Vec::new();
    for column in array_to_columns(array, ty.clone(), options, &[Encoding::RleDictionary])
        .map_err(|e| e.to_string())?
    {
        for page in column {
            let page = page.map_err(|e| e.to_string())?;
            out.push(compress(page, Vec::new(), options.compression).map_err(|e| e.to_string())?);
        }
    }
    Ok(out)
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
                ("v".into(), ColumnData::Float(floats.clone())),
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
                    ColumnData::Float((0..n).map(|i| Some((i as f64).sqrt())).collect()),
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
