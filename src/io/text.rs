//! Text encodings of input files: UTF-8 and the ISO-8859 / Windows code pages that
//! Statistics Finland's downloads still use.

use super::error::DataError;
use encoding_rs::Encoding;
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The character encoding of a text input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TextEncoding {
    /// UTF-8 if the bytes are valid UTF-8, otherwise ISO-8859-15 (what PxWeb exports).
    #[default]
    Detect,
    /// UTF-8 (a byte-order mark is skipped).
    Utf8,
    /// ISO-8859-1 (Latin-1).
    Latin1,
    /// ISO-8859-15 (Latin-9, Latin-1 with €).
    Latin9,
    /// Windows-1252.
    Windows1252,
}

impl FromStr for TextEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let k: String = s
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        Ok(match k.as_str() {
            "detect" | "auto" => TextEncoding::Detect,
            "utf8" => TextEncoding::Utf8,
            "iso88591" | "latin1" | "l1" => TextEncoding::Latin1,
            "iso885915" | "latin9" | "l9" => TextEncoding::Latin9,
            "windows1252" | "cp1252" | "ansi" => TextEncoding::Windows1252,
            _ => {
                return Err(format!(
                "unknown encoding `{s}` (expected utf-8, iso-8859-1, iso-8859-15 or windows-1252)"
            ))
            }
        })
    }
}

impl fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextEncoding::Detect => "detect",
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Latin1 => "iso-8859-1",
            TextEncoding::Latin9 => "iso-8859-15",
            TextEncoding::Windows1252 => "windows-1252",
        })
    }
}

impl TextEncoding {
    /// Decodes bytes to text. `file` names the input in errors.
    ///
    /// # Errors
    /// A [`DataError`] naming the line if the bytes are declared UTF-8 but are not.
    pub fn decode<'a>(self, bytes: &'a [u8], file: &str) -> Result<Cow<'a, str>, DataError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match self {
            TextEncoding::Detect => match std::str::from_utf8(bytes) {
                Ok(s) => Ok(Cow::Borrowed(s)),
                Err(_) => Ok(decode_single_byte(encoding_rs::ISO_8859_15, bytes)),
            },
            TextEncoding::Utf8 => std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count() as u64;
                DataError::at(
                    file,
                    super::error::Place::Line(line),
                    "the file is not valid UTF-8; give its encoding (e.g. iso-8859-15)",
                )
            }),
            // encoding_rs maps the label ISO-8859-1 to windows-1252, which agrees on every
            // printable character.
            TextEncoding::Latin1 | TextEncoding::Windows1252 => {
                Ok(decode_single_byte(encoding_rs::WINDOWS_1252, bytes))
            }
            TextEncoding::Latin9 => Ok(decode_single_byte(encoding_rs::ISO_8859_15, bytes)),
        }
    }
}

fn decode_single_byte<'a>(enc: &'static Encoding, bytes: &'a [u8]) -> Cow<'a, str> {
    enc.decode_without_bom_handling(bytes).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_utf8_and_falls_back_to_latin9() {
        let utf8 = "Ikä".as_bytes();
        assert_eq!(TextEncoding::Detect.decode(utf8, "f").unwrap(), "Ikä");
        let latin = b"Ik\xe4 \xa4";
        assert_eq!(TextEncoding::Detect.decode(latin, "f").unwrap(), "Ikä €");
        assert_eq!(TextEncoding::Latin1.decode(b"Ik\xe4", "f").unwrap(), "Ikä");
        assert!(TextEncoding::Utf8.decode(b"a\nIk\xe4", "f").is_err());
        assert_eq!(
            "ISO-8859-15".parse::<TextEncoding>().unwrap(),
            TextEncoding::Latin9
        );
        assert!("klingon".parse::<TextEncoding>().is_err());
    }
}
