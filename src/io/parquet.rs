//! Parquet tables. Reading: text and whole-number columns are dimensions, the value
//! column is the one named like a value (see [`super::csv::VALUE_NAMES`]) or else the
//! last floating-point column. Writing (used by [`super::frame::Frame::write`]): dictionary
//! pages straight from kunta's coded columns and patterns, plain numbers copied once into
//! their pages, row groups encoded in parallel.

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
/// min/max/null-count statistics, row groups of 262,144 rows, and an Arrow schema
/// (text as `LargeUtf8`, whole numbers as `Int64`, values as `Float64`, all nullable)
/// that polars, pandas and arrow read, old versions too (Arrow before 16 knows no
/// `Utf8View`). A missing value (NaN) is a null.
///
/// Coded columns ([`ColumnData::Coded`]) and patterns ([`ColumnData::Repeat`]) go
/// straight into dictionary pages from kunta's own codes, with each row group's
/// dictionary holding only the values it uses (so its statistics are tight); a
/// pattern's keys are written run by run (one repeated value a run of eight or more
/// rows), never a key a row in memory. Other columns are dictionary-encoded where that
/// pays, as polars does, except that a column of numbers whose sample (eight stretches
/// of 128 rows spread over it) is mostly distinct is written plain without trying,
/// copied once from the column into its page, with statistics kunta works out; a plain
/// chunk of numbers that Snappy does not shrink by a tenth (judged on a sample spread
/// over it) is stored uncompressed. The dictionary pages, page headers and statistics
/// are polars' own (from an array of the page's first row, or of its smallest and
/// largest value); a pattern's or plain column's chunk is one data page (polars splits
/// its own at about 1 MiB), which every Parquet reader reads.
/// Row groups and columns are encoded and compressed in parallel and written in order,
/// so the bytes do not depend on the thread count.
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
        // Declared as `LargeUtf8` (the pages are the same either way): readers older
        // than Arrow 16 (pandas on pyarrow 15, R arrow 15) refuse a file whose schema
        // holds `Utf8View`; polars reads both as its strings.
        ColumnData::Text(_) | ColumnData::Coded { .. } => ArrowDataType::LargeUtf8,
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
    use polars_parquet::write::{compress, Encoding};

    let range = rows.clone();
    let array: Box<dyn Array> = match c {
        ColumnData::Text(v) => Utf8ViewArray::from_slice_values(&v[rows]).boxed(),
        ColumnData::Int(v) => PrimitiveArray::<i64>::from_slice(&v[rows]).boxed(),
        // A column of numbers that are nearly all different is not worth a dictionary:
        // judged on a sample, so the whole column is not hashed only to find out.
        ColumnData::Float(v) if mostly_distinct(&v[rows.clone()]) => {
            return plain_pages(&v[rows], ty, options);
        }
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
        ColumnData::Repeat { values, each, .. } => match pattern_keys(values, *each, &rows) {
            Some((key, dictionary)) => {
                return pattern_pages(&key, dictionary, *each, rows, ty, options);
            }
            None => {
                let own: Vec<usize> =
                    super::frame::repeat_rows(values.len(), *each, range.clone()).collect();
                return encode_column(&values.pick(&own), 0..own.len(), ty, options);
            }
        },
    };
    let pages = polars_pages(array, ty, options, Encoding::RleDictionary)?;
    pages
        .into_iter()
        .map(|page| compress(page, Vec::new(), options.compression).map_err(|e| e.to_string()))
        .collect()
}

/// The pages polars encodes `array` into with `encoding` (not compressed yet).
fn polars_pages(
    array: Box<dyn polars_arrow::array::Array>,
    ty: &polars_parquet::write::ParquetType,
    options: polars_parquet::write::WriteOptions,
    encoding: polars_parquet::write::Encoding,
) -> Result<Vec<polars_parquet::write::Page>, String> {
    let mut pages = Vec::new();
    let columns = polars_parquet::write::array_to_columns(array, ty.clone(), options, &[encoding])
        .map_err(|e| e.to_string())?;
    for column in columns {
        for page in column {
            pages.push(page.map_err(|e| e.to_string())?);
        }
    }
    Ok(pages)
}

/// The page of numbers `v` written plain: every value's eight bytes in turn (a missing
/// value, NaN, is a null and takes none), copied once from `v` into the page. Its
/// statistics (the smallest and largest value and the number of nulls) are worked out
/// here; the page header is polars' own, from an array of just those values. Stored as
/// it is where Snappy does not shrink a sample of the page by a tenth: a model's
/// results in full precision hardly shrink.
fn plain_pages(
    v: &[f64],
    ty: &polars_parquet::write::ParquetType,
    options: polars_parquet::write::WriteOptions,
) -> Result<Vec<polars_parquet::write::CompressedPage>, String> {
    use polars_arrow::array::PrimitiveArray;
    use polars_arrow::bitmap::Bitmap;
    use polars_arrow::datatypes::ArrowDataType;
    use polars_parquet::parquet::page::{DataPage, DataPageHeader};
    use polars_parquet::parquet::CowBuffer;
    use polars_parquet::write::{compress, write_def_levels, CompressionOptions, Encoding, Page};
    // The smallest and largest value and the number of nulls, four lanes at a time.
    let (mut lo, mut hi, mut nan) = ([f64::INFINITY; 4], [f64::NEG_INFINITY; 4], [0usize; 4]);
    let chunks = v.chunks_exact(4);
    for x in chunks.remainder() {
        lo[0] = if *x < lo[0] { *x } else { lo[0] };
        hi[0] = if *x > hi[0] { *x } else { hi[0] };
        nan[0] += usize::from(x.is_nan());
    }
    for c in chunks {
        for l in 0..4 {
            lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
            hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
            nan[l] += usize::from(c[l].is_nan());
        }
    }
    let nulls: usize = nan.iter().sum();
    let (min, max) = (
        lo.iter().copied().fold(f64::INFINITY, f64::min),
        hi.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    // The header of a page of the smallest and largest value (and a null where there
    // are nulls): its statistics are the whole page's but for the count of nulls.
    let mut some = Vec::new();
    if nulls < v.len() {
        some.extend([min, max]);
    }
    let valid: Vec<bool> = std::iter::repeat_n(true, some.len())
        .chain((nulls > 0).then_some(false))
        .collect();
    some.resize(valid.len(), 0.0);
    let template = PrimitiveArray::new(
        ArrowDataType::Float64,
        some.into(),
        (nulls > 0).then(|| valid.iter().copied().collect::<Bitmap>()),
    )
    .boxed();
    let mut pages = polars_pages(template, ty, options, Encoding::Plain)?;
    let (Some(Page::Data(first)), 0) = (pages.pop(), pages.len()) else {
        return Err("a plain column did not make one data page".into());
    };
    let mut header = first.header().clone();
    match &mut header {
        DataPageHeader::V1(h) => {
            h.num_values = v.len() as i32;
            if let Some(s) = &mut h.statistics {
                s.null_count = Some(nulls as i64);
            }
        }
        DataPageHeader::V2(_) => return Err("numbers are written as a version 1 page".into()),
    }
    let mut buffer = Vec::with_capacity(16 + 8 * (v.len() - nulls));
    let validity = (nulls > 0).then(|| v.iter().map(|x| !x.is_nan()).collect::<Bitmap>());
    write_def_levels(
        &mut buffer,
        true,
        validity.as_ref(),
        v.len(),
        options.version,
    )
    .map_err(|e| e.to_string())?;
    if nulls == 0 {
        let start = buffer.len();
        buffer.resize(start + 8 * v.len(), 0);
        for (b, x) in buffer[start..].chunks_exact_mut(8).zip(v) {
            b.copy_from_slice(&x.to_le_bytes());
        }
    } else {
        for x in v.iter().filter(|x| !x.is_nan()) {
            buffer.extend_from_slice(&x.to_le_bytes());
        }
    }
    let compression = if shrinks(&buffer) {
        options.compression
    } else {
        CompressionOptions::Uncompressed
    };
    let page = DataPage::new(
        header,
        CowBuffer::Owned(buffer),
        first.descriptor.clone(),
        v.len(),
    );
    compress(Page::Data(page), Vec::new(), compression)
        .map(|p| vec![p])
        .map_err(|e| e.to_string())
}

/// Whether most of a sample of `v` (eight stretches of 128 rows spread over it, or all
/// of a shorter `v`) differ from each other: more than three in four distinct, the
/// share above which polars writes numbers plain (polars judges the whole chunk by an
/// estimate, hashing every value; this judges a sample).
fn mostly_distinct(v: &[f64]) -> bool {
    if v.len() <= 128 {
        return false;
    }
    let mut bits: Vec<u64> = spread_sample(v, 128).iter().map(|x| x.to_bits()).collect();
    let n = bits.len();
    bits.sort_unstable();
    bits.dedup();
    bits.len() * 4 > n * 3
}

/// Eight stretches of `piece` values spread evenly over `v`, first to last, or all of a
/// `v` no longer than them.
fn spread_sample<T: Copy>(v: &[T], piece: usize) -> Vec<T> {
    if v.len() <= 8 * piece {
        return v.to_vec();
    }
    let step = (v.len() - piece) / 7;
    (0..8)
        .flat_map(|k| &v[k * step..k * step + piece])
        .copied()
        .collect()
}

/// Whether Snappy shrinks a sample of a page (eight stretches of 8 KiB spread over
/// it, or the whole of a small page) by more than a tenth.
fn shrinks(page: &[u8]) -> bool {
    use polars_parquet::parquet::compression::compress;
    let sample = spread_sample(page, 8 << 10);
    let mut out = Vec::new();
    match compress(
        polars_parquet::write::CompressionOptions::Snappy,
        &sample,
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

/// The dictionary of the values a pattern over `values` (see [`ColumnData::Repeat`])
/// takes in the rows `rows`, and each of its values' key in it: text in the order of
/// its levels (as [`coded_array`] writes them), whole numbers in increasing order (as
/// polars writes a column of few whole numbers). `None` for a pattern of numbers or of
/// no values, and for no rows.
fn pattern_keys(
    values: &ColumnData,
    each: usize,
    rows: &std::ops::Range<usize>,
) -> Option<(Vec<u32>, Box<dyn polars_arrow::array::Array>)> {
    use polars_arrow::array::PrimitiveArray;
    let n = values.len();
    if n == 0 || rows.is_empty() {
        return None;
    }
    // The pattern's values these rows take: a run of them, around the end and back.
    let mut used = vec![false; n];
    if rows.len() >= n * each.max(1) {
        used.fill(true);
    } else {
        for q in rows.start / each.max(1)..=(rows.end - 1) / each.max(1) {
            used[q % n] = true;
        }
    }
    Some(match values {
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
    })
}

/// The pages of the rows `rows` of a pattern whose values have the keys `key` into
/// `dictionary`: the dictionary page, and one data page whose keys are written run by
/// run (a run of eight or more equal keys as one repeated value, shorter ones bit-packed:
/// Parquet's RLE/bit-packing hybrid), without a key a row in memory. The dictionary page
/// and the data page's header (its statistics are the dictionary's) are polars' own, from
/// an array of the first row.
fn pattern_pages(
    key: &[u32],
    dictionary: Box<dyn polars_arrow::array::Array>,
    each: usize,
    rows: std::ops::Range<usize>,
    ty: &polars_parquet::write::ParquetType,
    options: polars_parquet::write::WriteOptions,
) -> Result<Vec<polars_parquet::write::CompressedPage>, String> {
    use polars_parquet::parquet::page::{DataPage, DataPageHeader};
    use polars_parquet::parquet::CowBuffer;
    use polars_parquet::write::{compress, write_def_levels, Encoding, Page};
    let (n, each) = (key.len(), each.max(1));
    let words = dictionary.len();
    let first_key = key[(rows.start / each) % n];
    let template = dictionary_array(vec![first_key], dictionary)?;
    let mut pages = polars_pages(template, ty, options, Encoding::RleDictionary)?;
    let (Some(Page::Data(first)), 1) = (pages.pop(), pages.len()) else {
        return Err("a dictionary column did not make a dictionary and a data page".into());
    };
    let mut header = first.header().clone();
    match &mut header {
        DataPageHeader::V1(h) => h.num_values = rows.len() as i32,
        DataPageHeader::V2(_) => return Err("a pattern is written as a version 1 page".into()),
    }
    // Every row is there (a pattern has no missing values), then the keys.
    let mut buffer = Vec::new();
    write_def_levels(&mut buffer, true, None, rows.len(), options.version)
        .map_err(|e| e.to_string())?;
    let bits = u32::BITS - (words.max(1) as u32 - 1).leading_zeros();
    buffer.push(bits as u8);
    let page = DataPage::new(
        header,
        CowBuffer::Owned(pattern_keys_page(key, each, rows.clone(), bits, buffer)),
        first.descriptor.clone(),
        rows.len(),
    );
    pages.push(Page::Data(page));
    pages
        .into_iter()
        .map(|page| compress(page, Vec::new(), options.compression).map_err(|e| e.to_string()))
        .collect()
}

/// `buffer` (a data page's levels and bit width so far) with the keys of the rows
/// `rows` of a pattern whose values have the keys `key`, `each` (at least 1) rows a
/// value, `bits` bits a key.
fn pattern_keys_page(
    key: &[u32],
    each: usize,
    rows: std::ops::Range<usize>,
    bits: u32,
    mut buffer: Vec<u8>,
) -> Vec<u8> {
    let n = key.len();
    let mut j = (rows.start / each) % n;
    if bits == 0 {
        // One value: every row's key is 0, one repeated run of no bytes.
        uleb128(&mut buffer, (rows.len() as u64) << 1);
        return buffer;
    }
    let mut keys = Hybrid::new(bits, buffer);
    // The rows' runs of `each` rows a value: the first may start inside its run, the
    // last end inside it.
    let (mut at, mut len) = (rows.start, each - rows.start % each);
    if each == 1 {
        // The keys in turn, a stretch of the pattern at a time.
        while at < rows.end {
            let take = (n - j).min(rows.end - at);
            keys.literal(&key[j..j + take]);
            (at, j) = (at + take, 0);
        }
    } else if each < 8 {
        // Too short to repeat: bit-packed.
        while at < rows.end {
            let take = len.min(rows.end - at);
            keys.literal(&[key[j]; 8][..take]);
            (at, len, j) = (at + take, each, if j + 1 == n { 0 } else { j + 1 });
        }
    } else {
        // Each run of equal keys (next values may have the same key) repeated.
        let (mut run_key, mut run_len) = (key[j], 0usize);
        while at < rows.end {
            let take = len.min(rows.end - at);
            if key[j] != run_key {
                keys.run(run_key, run_len);
                (run_key, run_len) = (key[j], 0);
            }
            run_len += take;
            (at, len, j) = (at + take, each, if j + 1 == n { 0 } else { j + 1 });
        }
        keys.run(run_key, run_len);
    }
    keys.finish()
}

/// Keys in Parquet's RLE/bit-packing hybrid encoding, given run by run: a run of eight or
/// more equal keys is written as one repeated value, shorter ones are bit-packed in
/// groups of eight (at most 8,192 keys a group run).
struct Hybrid {
    out: Vec<u8>,
    bits: u32,
    literal: Vec<u32>,
}

impl Hybrid {
    const LITERAL: usize = 8192;

    fn new(bits: u32, out: Vec<u8>) -> Hybrid {
        Hybrid {
            out,
            bits,
            literal: Vec::with_capacity(Self::LITERAL),
        }
    }

    /// `len` more keys `key`.
    fn run(&mut self, key: u32, mut len: usize) {
        // A literal run is written in whole groups of eight: the run first completes one.
        if !self.literal.is_empty() {
            let fill = ((8 - self.literal.len() % 8) % 8).min(len);
            self.literal.extend(std::iter::repeat_n(key, fill));
            len -= fill;
        }
        if len >= 8 {
            self.flush();
            uleb128(&mut self.out, (len as u64) << 1);
            self.out
                .extend_from_slice(&key.to_le_bytes()[..self.bits.div_ceil(8) as usize]);
            return;
        }
        self.literal.extend(std::iter::repeat_n(key, len));
        if self.literal.len() >= Self::LITERAL {
            self.write_literal(self.literal.len() / 8 * 8);
        }
    }

    /// Keys to bit-pack, in turn.
    fn literal(&mut self, keys: &[u32]) {
        self.literal.extend_from_slice(keys);
        if self.literal.len() >= Self::LITERAL {
            self.write_literal(self.literal.len() / 8 * 8);
        }
    }

    /// Writes the keys held for a literal run: all of them (the last group padded with
    /// zeros, which readers leave out by the page's count of values).
    fn flush(&mut self) {
        if !self.literal.is_empty() {
            let groups = self.literal.len().div_ceil(8);
            self.literal.resize(groups * 8, 0);
            self.write_literal(groups * 8);
        }
    }

    /// Writes the first `len` (a multiple of eight) keys held as a literal run and keeps
    /// the others.
    fn write_literal(&mut self, len: usize) {
        uleb128(&mut self.out, ((len as u64 / 8) << 1) | 1);
        let (mut acc, mut held) = (0u64, 0u32);
        for &k in &self.literal[..len] {
            acc |= u64::from(k) << held;
            held += self.bits;
            while held >= 8 {
                self.out.push(acc as u8);
                acc >>= 8;
                held -= 8;
            }
        }
        debug_assert_eq!(held, 0);
        self.literal.drain(..len);
    }

    fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}

/// Appends `v` as an unsigned LEB128 number.
fn uleb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
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
            // Runs too short to repeat, and values of the same key side by side.
            (
                "short",
                ColumnData::repeat(ColumnData::Int(vec![4, 4, 1, 9, 4]), 3, n),
            ),
            (
                "twice",
                ColumnData::repeat(
                    ColumnData::Text(["x", "x", "y"].map(String::from).to_vec()),
                    9,
                    n,
                ),
            ),
            // A run after a short one completes its group of eight first (a row group
            // starts 4 rows into a run of 10); keys wider than a byte, repeated and
            // bit-packed; a single value a row.
            (
                "fill",
                ColumnData::repeat(ColumnData::Int((0..5).collect()), 10, n),
            ),
            (
                "wide",
                ColumnData::repeat(ColumnData::Int((0..300).rev().collect()), 9, n),
            ),
            (
                "wide1",
                ColumnData::repeat(
                    ColumnData::Text((0..300).map(|a| format!("w{a:03}")).collect()),
                    1,
                    n,
                ),
            ),
            ("one", ColumnData::repeat(ColumnData::Int(vec![7]), 1, n)),
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

    /// The RLE/bit-packing hybrid as polars' own reader decodes it: runs short and
    /// long, keys of several widths, literal runs longer than one flush.
    #[test]
    fn hybrid_keys_decode_as_their_runs() {
        use polars_parquet::parquet::encoding::hybrid_rle::HybridRleDecoder;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        // The last widths: only short runs, so literal runs pass 8,192 keys.
        for (bits, long) in [
            (1u32, true),
            (3, true),
            (5, true),
            (8, true),
            (9, true),
            (12, true),
            (5, false),
            (10, false),
        ] {
            let mut enc = Hybrid::new(bits, Vec::new());
            let mut want: Vec<u32> = Vec::new();
            for _ in 0..6000 {
                let key = next(1 << bits) as u32;
                let len = match next(10) {
                    0 if long => 1 + next(300) as usize,
                    1..=2 if long => 8 + next(9) as usize,
                    _ => 1 + next(7) as usize,
                };
                enc.run(key, len);
                want.extend(std::iter::repeat_n(key, len));
            }
            let bytes = enc.finish();
            let got = HybridRleDecoder::new(&bytes, bits, want.len())
                .collect()
                .unwrap();
            assert_eq!(got, want, "bit width {bits}");
        }
    }

    /// Plain numbers with missing values: nulls where the values are NaN, the others
    /// exactly, and each row group's statistics those of its values.
    #[test]
    fn plain_numbers_keep_their_nulls_and_statistics() {
        use polars_parquet::parquet::read::read_metadata;
        use polars_parquet::parquet::statistics::Statistics;
        // The first row group has nulls, the second none (and both zeros).
        let n = ROW_GROUP + 2500;
        let v: Vec<f64> = (0..n)
            .map(|i| {
                if i % 997 == 5 && i < ROW_GROUP {
                    f64::NAN
                } else if i == ROW_GROUP + 7 {
                    -0.0
                } else if i == ROW_GROUP + 9 {
                    0.0
                } else {
                    ((i as f64) * 0.37).sin() * (1.0 + i as f64)
                }
            })
            .collect();
        assert!(mostly_distinct(&v[..1024]) && mostly_distinct(&v[ROW_GROUP..]));
        let frame = Frame {
            columns: vec![("v".into(), ColumnData::Float(v.clone()))],
        };
        let mut bytes = Vec::new();
        write_frame(&frame, &mut bytes).unwrap();
        let df = ParquetReader::new(std::io::Cursor::new(bytes.clone()))
            .finish()
            .unwrap();
        let back: Vec<Option<f64>> = df.columns()[0].f64().unwrap().iter().collect();
        let want: Vec<Option<f64>> = v.iter().map(|x| (!x.is_nan()).then_some(*x)).collect();
        assert_eq!(back, want);
        let md = read_metadata(&mut std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(md.row_groups.len(), 2);
        for (g, rows) in [(0, 0..ROW_GROUP), (1, ROW_GROUP..n)] {
            let stats = md.row_groups[g].parquet_columns()[0]
                .statistics(&md.footer_buf)
                .expect("statistics")
                .unwrap();
            let Statistics::Double(s) = stats else {
                panic!("numbers have statistics of numbers")
            };
            let part = &v[rows];
            let valid = part.iter().filter(|x| !x.is_nan());
            let min = valid.clone().copied().fold(f64::INFINITY, f64::min);
            let max = valid.copied().fold(f64::NEG_INFINITY, f64::max);
            let nulls = part.iter().filter(|x| x.is_nan()).count();
            assert_eq!(
                (s.min_value, s.max_value, s.null_count),
                (Some(min), Some(max), Some(nulls as i64))
            );
        }
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
