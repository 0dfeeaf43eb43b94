//! The report's words and numbers in Finnish or English.

/// The language of the report and the workbook's summary sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Finnish (the default): `1 234,5`.
    #[default]
    Fi,
    /// English: `1,234.5`.
    En,
}

impl Lang {
    /// The language a code names (`fi`, `en`).
    pub fn from_code(code: &str) -> Option<Lang> {
        match code.to_ascii_lowercase().as_str() {
            "fi" | "fin" | "suomi" => Some(Lang::Fi),
            "en" | "eng" | "english" => Some(Lang::En),
            _ => None,
        }
    }

    /// The HTML `lang` code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fi => "fi",
            Lang::En => "en",
        }
    }

    /// A text in this language: `t("Väestö", "Population")`.
    pub fn t(self, fi: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Fi => fi,
            Lang::En => en,
        }
    }

    /// "Not by `year`" in this language: Finnish puts the year inside the phrase
    /// (`ei vuoteen 2045 mennessä`).
    pub fn not_by(self, year: impl std::fmt::Display) -> String {
        match self {
            Lang::Fi => format!("ei vuoteen {year} mennessä"),
            Lang::En => format!("not by {year}"),
        }
    }

    /// `x` with `decimals` decimals and the language's separators: `12 345,6` in
    /// Finnish (a no-break space between thousands, a comma before the decimals, a
    /// minus sign), `12,345.6` in English. Not a number is `–`.
    pub fn num(self, x: f64, decimals: usize) -> String {
        if !x.is_finite() {
            return "–".into();
        }
        let s = format!("{:.*}", decimals, x.abs());
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s.as_str(), None),
        };
        let (group, point, minus) = match self {
            Lang::Fi => ('\u{a0}', ',', '\u{2212}'),
            Lang::En => (',', '.', '-'),
        };
        let mut out = String::new();
        // Rounding may leave nothing but zeros: no sign then.
        let zero = s.bytes().all(|b| b == b'0' || b == b'.');
        if x < 0.0 && !zero {
            out.push(minus);
        }
        // Finnish leaves four-digit numbers whole (`1234`), English groups them.
        let n = int.len();
        let from = match self {
            Lang::Fi => 5,
            Lang::En => 4,
        };
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (n - i) % 3 == 0 && n >= from {
                out.push(group);
            }
            out.push(ch);
        }
        if let Some(f) = frac {
            out.push(point);
            out.push_str(f);
        }
        out
    }

    /// A share as a percentage: `12,5 %` / `12.5%`.
    pub fn pct(self, share: f64, decimals: usize) -> String {
        if !share.is_finite() {
            return "–".into();
        }
        match self {
            Lang::Fi => format!("{}\u{a0}%", self.num(100.0 * share, decimals)),
            Lang::En => format!("{}%", self.num(100.0 * share, decimals)),
        }
    }

    /// A change as a percentage with its sign: `+4,6 %`, `−2,5 %` (`+4.6%`, `-2.5%`).
    pub fn change(self, share: f64, decimals: usize) -> String {
        let p = self.pct(share, decimals);
        if share > 0.0
            && p.starts_with(|c: char| c.is_ascii_digit())
            && p != self.pct(0.0, decimals)
        {
            format!("+{p}")
        } else {
            p
        }
    }

    /// A probability as a percentage in whole per cents, but never rounded to 0 % or
    /// 100 % when it is not (a 99.6 % chance is not a certainty): one decimal there.
    pub fn chance(self, p: f64) -> String {
        let (v, decimals) = shown_chance(p);
        self.pct(v / 100.0, decimals)
    }

    /// Euros in millions: `12,35 M€` / `€12.35M`.
    pub fn meur(self, eur: f64) -> String {
        match self {
            Lang::Fi => format!("{}\u{a0}M€", self.num(eur / 1e6, 2)),
            Lang::En => {
                let s = self.num(eur / 1e6, 2);
                match s.strip_prefix('-') {
                    Some(pos) => format!("-€{pos}M"),
                    None => format!("€{s}M"),
                }
            }
        }
    }

    /// An axis tick: as few decimals as the step needs.
    pub fn tick(self, x: f64, step: f64) -> String {
        let decimals = if step >= 1.0 || step <= 0.0 {
            0
        } else {
            (-step.log10()).ceil() as usize
        };
        self.num(x, decimals.min(4))
    }
}

/// A planning age group's label as the report shows it (`0-6` → `0–6`).
pub fn group_label(g: &str, lang: Lang) -> String {
    if g == "all" {
        return lang.t("kaikki", "all").into();
    }
    g.replace('-', "–")
}

/// A segment id as the report shows it.
pub fn segment_label(s: &str, lang: Lang) -> String {
    match s {
        "all" => lang.t("kaikki", "all").into(),
        "general" => lang.t("yleinen tuki", "general support").into(),
        "intensified" => lang.t("tehostettu tuki", "intensified support").into(),
        "special" => lang.t("erityinen tuki", "special support").into(),
        other => other.replace('_', " "),
    }
}

/// A resource's label and unit.
pub fn resource_label(r: &str, lang: Lang) -> (&'static str, &'static str) {
    match r {
        "floor_area_m2" => (lang.t("Kerrosala", "Floor area"), "m²"),
        "groups" => (
            lang.t("Opetusryhmät", "Teaching groups"),
            lang.t("ryhmää", "groups"),
        ),
        "weekly_hours" => (
            lang.t("Opetustunnit viikossa", "Lesson hours a week"),
            lang.t("tuntia", "hours"),
        ),
        "teacher_fte" => (lang.t("Opettajat", "Teachers"), lang.t("htv", "FTE")),
        "staff_fte" => (lang.t("Henkilöstö", "Staff"), lang.t("htv", "FTE")),
        _ => ("", ""),
    }
}

/// A cost component's label.
pub fn component_label(c: &str, lang: Lang) -> String {
    match c {
        "units" => lang.t("asiakaskohtaiset", "per user").into(),
        "premises" => lang.t("tilat", "premises").into(),
        "staff" => lang.t("henkilöstö", "staff").into(),
        "fixed" => lang.t("kiinteät", "fixed").into(),
        "overhead" => lang.t("yleiskulut", "overhead").into(),
        "investment" => lang.t("investointi", "investment").into(),
        "total" => lang.t("yhteensä", "total").into(),
        other => other.into(),
    }
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A probability `p` as the per cents shown and their decimals: whole per cents, but
/// one decimal below 1 % (rounded up) and above 99 % (rounded down), so that a chance
/// is never shown as none or as a certainty when it is not.
pub fn shown_chance(p: f64) -> (f64, usize) {
    let v = 100.0 * p;
    if v > 0.0 && v < 1.0 {
        ((v * 10.0).ceil() / 10.0, 1)
    } else if v > 99.0 && v < 100.0 {
        ((v * 10.0).floor() / 10.0, 1)
    } else {
        (v, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_take_the_languages_separators() {
        assert_eq!(Lang::Fi.num(12345.678, 1), "12\u{a0}345,7");
        assert_eq!(Lang::En.num(12345.678, 1), "12,345.7");
        assert_eq!(Lang::Fi.num(-1234.0, 0), "\u{2212}1234");
        assert_eq!(Lang::En.num(-1234567.0, 0), "-1,234,567");
        assert_eq!(Lang::En.num(-0.001, 1), "0.0");
        assert_eq!(Lang::Fi.pct(0.125, 1), "12,5\u{a0}%");
        assert_eq!(Lang::En.meur(-2_500_000.0), "-€2.50M");
        assert_eq!(Lang::En.num(f64::NAN, 1), "–");
    }

    /// A change carries its sign, and no change none.
    #[test]
    fn changes_carry_their_sign() {
        assert_eq!(Lang::Fi.change(0.046, 1), "+4,6\u{a0}%");
        assert_eq!(Lang::Fi.change(-0.025, 1), "\u{2212}2,5\u{a0}%");
        assert_eq!(Lang::En.change(0.046, 1), "+4.6%");
        assert_eq!(Lang::En.change(0.0, 1), "0.0%");
        assert_eq!(Lang::En.change(0.00001, 1), "0.0%");
    }

    /// A chance is never rounded to a certainty, nor to none, when it is not one.
    #[test]
    fn chances_keep_their_doubt() {
        assert_eq!(Lang::En.chance(0.996), "99.6%");
        assert_eq!(Lang::En.chance(0.9999), "99.9%");
        assert_eq!(Lang::En.chance(1.0), "100%");
        assert_eq!(Lang::En.chance(0.004), "0.4%");
        assert_eq!(Lang::En.chance(0.0002), "0.1%");
        assert_eq!(Lang::En.chance(0.0), "0%");
        assert_eq!(Lang::Fi.chance(0.42), "42\u{a0}%");
        assert_eq!(Lang::Fi.not_by(2045), "ei vuoteen 2045 mennessä");
    }
}
