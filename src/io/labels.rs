//! How Finnish (and other) tables spell areas, sexes, ages, years and totals.

use crate::population::{Age, Sex};

/// The part a column plays in a population-like table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Area (alue, kunta).
    Area,
    /// Sex (sukupuoli).
    Sex,
    /// Age (ikä).
    Age,
    /// Year (vuosi).
    Year,
    /// The statistic measured (tiedot, contentscode).
    Content,
}

impl Role {
    /// The canonical column name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Area => "area",
            Role::Sex => "sex",
            Role::Age => "age",
            Role::Year => "year",
            Role::Content => "content",
        }
    }
}

/// Recognises a column by its name or label: `area`/`Alue`/`alue_23_20260101`,
/// `sex`/`Sukupuoli`, `age`/`Ikä`/`ikaryhma_10_20180101`, `year`/`Vuosi`/`timeperiod_y`,
/// `Tiedot`/`contentscode`. Case-insensitive.
pub fn role_of(name: &str) -> Option<Role> {
    let n = name.trim().to_lowercase();
    let word: String = n.chars().take_while(|c| c.is_alphabetic()).collect();
    let role = match word.as_str() {
        "area" | "alue" | "kunta" | "municipality" | "region" | "maakunta" => Role::Area,
        "sex" | "gender" | "sukupuoli" => Role::Sex,
        "age" | "ikä" | "ika" | "ikaryhma" | "ikäryhmä" => Role::Age,
        "year" | "vuosi" | "timeperiod" => Role::Year,
        "tiedot" | "contentscode" | "content" | "contents" => Role::Content,
        _ => return None,
    };
    // `area_name`, `age_group` and the like are attributes, not the dimension itself,
    // unless the suffix is a JSON-stat version tag (`alue_23_20260101`) or `_y`.
    let rest = &n[word.len()..];
    let versioned = rest
        .trim_start_matches('_')
        .chars()
        .all(|c| c.is_ascii_digit() || c == '_')
        || rest == "_y";
    (rest.is_empty() || versioned).then_some(role)
}

/// Labels that stand for the total over a dimension (never summed in).
pub fn is_total(label: &str) -> bool {
    let l = label.trim().to_lowercase();
    matches!(
        l.as_str(),
        "sss"
            | "yhteensä"
            | "yhteensa"
            | "koko maa"
            | "total"
            | "totalt"
            | "kaikki"
            | "whole country"
            | "hela landet"
            | "kaikki ikäluokat"
    )
}

/// A label read from a table: a value, or the total over the dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label<T> {
    /// A value.
    Value(T),
    /// The total over the dimension (never summed in).
    Total,
}

/// A text that is not a usable number nor a missing-value symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotANumber {
    /// Not a number at all.
    Text,
    /// A number beyond what a 64-bit float holds (such as `1e400`).
    TooLarge,
}

impl NotANumber {
    /// What is wrong, for messages.
    pub fn problem(self) -> &'static str {
        match self {
            NotANumber::Text => "not a number",
            NotANumber::TooLarge => "a number too large to hold (beyond ±1.8e308)",
        }
    }
}

/// Parses a sex code: `1`/`2` (Statistics Finland: 1 male, 2 female), `m`/`f`,
/// `male`/`female`, `miehet`/`naiset` and their singulars, or the total (`0`, `SSS`,
/// `Yhteensä`). `None` if the label is none of these.
pub fn parse_sex(label: &str) -> Option<Label<Sex>> {
    let l = label.trim().to_lowercase();
    match l.as_str() {
        "1" | "m" | "male" | "males" | "men" | "miehet" | "mies" | "pojat" => {
            Some(Label::Value(Sex::Male))
        }
        "2" | "f" | "female" | "females" | "women" | "naiset" | "nainen" | "tytöt" => {
            Some(Label::Value(Sex::Female))
        }
        "0" => Some(Label::Total),
        _ if is_total(&l) => Some(Label::Total),
        _ => None,
    }
}

/// The largest age kunta accepts; anything above is surely a typo.
pub const MAX_AGE: u16 = 150;

/// Parses an age: whole years (`7`, `007`) or an open top group (`100 -`, `100-`,
/// `100+`, `100 ja yli`), or the total (`SSS`, `Yhteensä`). `None` if the label is
/// none of these.
pub fn parse_age(label: &str) -> Option<Label<Age>> {
    let l = label.trim().to_lowercase();
    if is_total(&l) {
        return Some(Label::Total);
    }
    let digits: String = l.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    let rest = l[digits.len()..].trim();
    let open_suffix = matches!(
        rest,
        "" | "-"
            | "+"
            | "ja yli"
            | "ja vanhemmat"
            | "or over"
            | "and over"
            | "+ years"
            | "years or over"
    );
    if !open_suffix {
        return None;
    }
    let n: u16 = digits.parse().ok()?;
    (n <= MAX_AGE).then_some(Label::Value(Age(n)))
}

/// Parses a year: a whole number from 1000 to 9999.
pub fn parse_year(label: &str) -> Option<i32> {
    let l = label.trim();
    if l.len() != 4 || !l.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    l.parse().ok()
}

/// Symbols statistical tables use for a missing value.
pub fn is_missing_symbol(s: &str) -> bool {
    matches!(
        s.trim(),
        "" | "." | ".." | "..." | "...." | "....." | "......" | "-" | ":"
    )
}

/// Parses a number as statistical tables write it: `12`, `12.5`, `-3`, `1e3`, or with a
/// decimal comma (`12,5`) when `comma_decimal` is set. Missing symbols give `Ok(None)`.
///
/// # Errors
/// [`NotANumber`] for any other text.
pub fn parse_number(s: &str, comma_decimal: bool) -> Result<Option<f64>, NotANumber> {
    let t = s.trim();
    if is_missing_symbol(t) {
        return Ok(None);
    }
    let owned;
    let t = if comma_decimal && t.contains(',') && !t.contains('.') {
        owned = t.replace(',', ".");
        owned.as_str()
    } else {
        t
    };
    // f64::from_str accepts `inf` and `nan`; statistical tables never mean those.
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return Err(NotANumber::Text);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_infinite() => Err(NotANumber::TooLarge),
        Ok(v) => Ok(Some(v)),
        Err(_) => Err(NotANumber::Text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_finnish_and_new_style_ids() {
        assert_eq!(role_of("Alue"), Some(Role::Area));
        assert_eq!(role_of("alue_23_20260101"), Some(Role::Area));
        assert_eq!(role_of("ikaryhma_10_20180101"), Some(Role::Age));
        assert_eq!(role_of("Ikä"), Some(Role::Age));
        assert_eq!(role_of("SUKUPUOLI"), Some(Role::Sex));
        assert_eq!(role_of("timeperiod_y"), Some(Role::Year));
        assert_eq!(role_of("Vuosi"), Some(Role::Year));
        assert_eq!(role_of("contentscode"), Some(Role::Content));
        assert_eq!(role_of("area_name"), None);
        assert_eq!(role_of("population"), None);
    }

    #[test]
    fn sexes_ages_and_totals() {
        assert_eq!(parse_sex("1"), Some(Label::Value(Sex::Male)));
        assert_eq!(parse_sex("Naiset"), Some(Label::Value(Sex::Female)));
        assert_eq!(parse_sex("f"), Some(Label::Value(Sex::Female)));
        assert_eq!(parse_sex("0"), Some(Label::Total));
        assert_eq!(parse_sex("SSS"), Some(Label::Total));
        assert_eq!(parse_sex("x"), None);
        assert_eq!(parse_age("007"), Some(Label::Value(Age(7))));
        for open in ["100 -", "100-", "100+", "100 ja yli"] {
            assert_eq!(parse_age(open), Some(Label::Value(Age(100))), "{open}");
        }
        assert_eq!(parse_age("Yhteensä"), Some(Label::Total));
        assert_eq!(parse_age("abc"), None);
        assert_eq!(parse_age("-1"), None);
        assert_eq!(parse_age("5-9"), None);
        assert_eq!(parse_age("151"), None);
        assert!(is_total("KOKO MAA"));
        assert_eq!(parse_year("2019"), Some(2019));
        assert_eq!(parse_year("2019M01"), None);
    }

    #[test]
    fn numbers_and_missing_symbols() {
        assert_eq!(parse_number("12,5", true), Ok(Some(12.5)));
        assert_eq!(parse_number("12,5", false), Err(NotANumber::Text));
        assert_eq!(parse_number("..", false), Ok(None));
        assert_eq!(parse_number("-", false), Ok(None));
        assert_eq!(parse_number("-3", false), Ok(Some(-3.0)));
        assert_eq!(parse_number("nan", false), Err(NotANumber::Text));
        assert_eq!(parse_number("inf", false), Err(NotANumber::Text));
        assert_eq!(parse_number("1e400", false), Err(NotANumber::TooLarge));
        assert_eq!(parse_number("-1e400", false), Err(NotANumber::TooLarge));
    }
}
