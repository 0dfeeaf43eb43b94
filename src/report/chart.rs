//! The report's charts, drawn with plotters' SVG backend: lines over the years with
//! fan bands, stacked areas, and the population pyramid. Each function returns one
//! `<svg>` element; text is left to the browser.

use super::text::Lang;
use plotters::coord::Shift;
use plotters::prelude::*;

/// A colour-blind-safe palette (Okabe and Ito), then grey and black.
const PALETTE: [(u8, u8, u8); 8] = [
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (213, 94, 0),
    (204, 121, 167),
    (86, 180, 233),
    (120, 120, 120),
    (0, 0, 0),
];

/// The palette's colour `k` (wrapping).
pub fn color(k: usize) -> RGBColor {
    let (r, g, b) = PALETTE[k % PALETTE.len()];
    RGBColor(r, g, b)
}

/// The palette's colour `k` lightened towards white, opaque (stacked areas overlap, so
/// they cannot be see-through).
fn light(k: usize) -> RGBColor {
    let RGBColor(r, g, b) = color(k);
    let mix = |c: u8| (0.7 * f64::from(c) + 0.3 * 255.0).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

/// Width and height of a full-width chart, in pixels.
pub const WIDE: (u32, u32) = (680, 340);
/// Width and height of a chart without a legend that sits two in a row.
pub const HALF: (u32, u32) = (420, 260);
/// Width and height of a unit's chart (with its legend beside it).
pub const UNIT: (u32, u32) = (560, 270);

/// A line over the years.
#[derive(Debug, Clone)]
pub struct Line {
    /// In the legend.
    pub label: String,
    /// (year, value).
    pub points: Vec<(i32, f64)>,
    /// Palette index.
    pub color: usize,
    /// Stroke width in pixels.
    pub width: u32,
}

/// A band between two lines (a fan of quantiles).
#[derive(Debug, Clone)]
pub struct Band {
    /// In the legend (empty: none).
    pub label: String,
    /// (year, low, high).
    pub points: Vec<(i32, f64, f64)>,
    /// Palette index.
    pub color: usize,
    /// Opacity of the fill.
    pub alpha: f64,
}

/// A chart of values over the years.
#[derive(Debug, Clone, Default)]
pub struct YearChart {
    /// The caption above the plot.
    pub title: String,
    /// The vertical axis' description, with its unit.
    pub y_desc: String,
    /// The horizontal axis' description (`vuosi`, `year`).
    pub x_desc: String,
    /// Stacked areas, bottom first (drawn first).
    pub stacked: Vec<Line>,
    /// Bands, drawn under the lines.
    pub bands: Vec<Band>,
    /// Lines.
    pub lines: Vec<Line>,
    /// A year to mark with a vertical line and its label (a break-even year).
    pub marker: Option<(i32, String)>,
    /// Width and height.
    pub size: (u32, u32),
    /// Whether the vertical axis may start above 0 (for paths that differ little
    /// compared with their size).
    pub tight: bool,
}

type Res<T> = Result<T, String>;

/// What [`years`] says of a chart without any values.
pub const EMPTY: &str = "a chart without values";

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing a chart failed: {e:?}")
}

/// Draws a chart into an SVG string.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Res<()>,
) -> Res<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// The value range to show: from 0 (or the lowest negative value) to a little above
/// the highest.
fn y_range(values: impl Iterator<Item = f64>, tight: bool) -> (f64, f64) {
    let (mut lo, mut hi) = if tight {
        (f64::INFINITY, f64::NEG_INFINITY)
    } else {
        (0.0f64, 0.0f64)
    };
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 0.0);
    }
    if tight && hi > lo {
        let pad = 0.1 * (hi - lo);
        return (lo - pad, hi + pad);
    }
    if hi - lo <= 0.0 {
        hi = lo + 1.0;
    }
    let pad = 0.08 * (hi - lo);
    (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad)
}

/// A step for the axis' ticks about `(hi − lo) / 6`, rounded to 1, 2 or 5 times a power
/// of ten (for the tick labels' decimals).
fn tick_step(lo: f64, hi: f64) -> f64 {
    let raw = (hi - lo) / 6.0;
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.0
    } else if m < 7.5 {
        5.0
    } else {
        10.0
    }
}

/// Draws a chart of values over the years.
pub fn years(c: &YearChart, lang: Lang) -> Res<String> {
    let all_x = c
        .lines
        .iter()
        .chain(&c.stacked)
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(c.bands.iter().flat_map(|b| b.points.iter().map(|p| p.0)));
    let (x0, x1) = all_x.fold((i32::MAX, i32::MIN), |(a, b), x| (a.min(x), b.max(x)));
    if x0 > x1 {
        return Err(EMPTY.into());
    }
    let x1 = x1.max(x0 + 1);
    // Stacked areas: each line on top of those before it.
    let mut stacked = c.stacked.clone();
    for k in 1..stacked.len() {
        let (before, rest) = stacked.split_at_mut(k);
        for (p, q) in rest[0].points.iter_mut().zip(&before[k - 1].points) {
            p.1 += q.1;
        }
    }
    let (lo, hi) = y_range(
        c.lines
            .iter()
            .chain(&stacked)
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .chain(
                c.bands
                    .iter()
                    .flat_map(|b| b.points.iter().flat_map(|p| [p.1, p.2])),
            ),
        c.tight,
    );
    let step = tick_step(lo, hi);
    let legend = legend_of(c);
    let size = if legend.is_empty() {
        c.size
    } else {
        (c.size.0 + LEGEND_WIDTH, c.size.1)
    };
    svg(size, |root| {
        let root = if legend.is_empty() {
            root.clone()
        } else {
            let (plot, side) = root.split_horizontally(c.size.0);
            draw_legend(&side, &legend)?;
            plot
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0 as f64..x1 as f64, lo..hi)
            .map_err(err)?;
        let yfmt = |y: &f64| lang.tick(*y, step);
        let xfmt = |x: &f64| format!("{x:.0}");
        let span = (x1 - x0) as usize;
        chart
            .configure_mesh()
            .x_labels(span.min(10) + 1)
            .y_labels(7)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .y_desc(c.y_desc.as_str())
            .x_desc(c.x_desc.as_str())
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(222, 222, 222))
            .axis_desc_style(("sans-serif", 13))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        for s in stacked.iter().rev() {
            chart
                .draw_series(AreaSeries::new(
                    s.points.iter().map(|p| (p.0 as f64, p.1)),
                    0.0,
                    light(s.color).filled(),
                ))
                .map_err(err)?;
        }
        for b in &c.bands {
            let col = color(b.color);
            let mut pts: Vec<(f64, f64)> = b.points.iter().map(|p| (p.0 as f64, p.2)).collect();
            pts.extend(b.points.iter().rev().map(|p| (p.0 as f64, p.1)));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    pts,
                    col.mix(b.alpha).filled(),
                )))
                .map_err(err)?;
        }
        if lo < 0.0 && hi > 0.0 {
            chart
                .draw_series(LineSeries::new(
                    [(x0 as f64, 0.0), (x1 as f64, 0.0)],
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
        }
        for l in &c.lines {
            chart
                .draw_series(LineSeries::new(
                    l.points.iter().map(|p| (p.0 as f64, p.1)),
                    color(l.color).stroke_width(l.width),
                ))
                .map_err(err)?;
        }
        if let Some((year, label)) = &c.marker {
            let x = f64::from(*year);
            chart
                .draw_series(LineSeries::new(
                    [(x, lo), (x, hi)],
                    color(3).stroke_width(2),
                ))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (x, hi - 0.04 * (hi - lo)),
                    ("sans-serif", 13).into_font().color(&color(3)),
                )))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// How a legend entry is drawn.
enum Swatch {
    Line(usize, u32),
    Fill(usize, f64),
    Solid(usize),
}

/// The legend entries of a chart: lines first, then bands, then stacked areas from the
/// top down.
fn legend_of(c: &YearChart) -> Vec<(Swatch, &str)> {
    let mut out: Vec<(Swatch, &str)> = Vec::new();
    for l in c.lines.iter().filter(|l| !l.label.is_empty()) {
        out.push((Swatch::Line(l.color, l.width), &l.label));
    }
    for b in c.bands.iter().filter(|b| !b.label.is_empty()) {
        out.push((Swatch::Fill(b.color, b.alpha), &b.label));
    }
    for s in c.stacked.iter().rev() {
        out.push((Swatch::Solid(s.color), &s.label));
    }
    out
}

/// Width of the legend column beside the plot.
const LEGEND_WIDTH: u32 = 190;

/// Draws the legend into its own column, beside the plot rather than over the lines.
fn draw_legend(area: &DrawingArea<SVGBackend<'_>, Shift>, entries: &[(Swatch, &str)]) -> Res<()> {
    let font = ("sans-serif", 12).into_font();
    for (k, (swatch, label)) in entries.iter().enumerate() {
        let y = 48 + 20 * k as i32;
        match swatch {
            Swatch::Line(c, w) => area
                .draw(&PathElement::new(
                    vec![(6, y), (30, y)],
                    color(*c).stroke_width(*w + 1),
                ))
                .map_err(err)?,
            Swatch::Fill(c, a) => area
                .draw(&Rectangle::new(
                    [(6, y - 6), (30, y + 6)],
                    color(*c).mix(*a).filled(),
                ))
                .map_err(err)?,
            Swatch::Solid(c) => area
                .draw(&Rectangle::new(
                    [(6, y - 6), (30, y + 6)],
                    light(*c).filled(),
                ))
                .map_err(err)?,
        }
        // Long names are cut to the column's width.
        let text: String = if label.chars().count() > 24 {
            label.chars().take(23).chain(std::iter::once('…')).collect()
        } else {
            label.to_string()
        };
        area.draw(&Text::new(text, (36, y - 7), font.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// A population pyramid: men to the left, women to the right, one bar per age for the
/// first year and an outline for the last.
#[derive(Debug, Clone)]
pub struct Pyramid {
    /// The caption.
    pub title: String,
    /// Per age from 0: (men, women) in the first year.
    pub first: Vec<(f64, f64)>,
    /// Per age from 0: (men, women) in the last year.
    pub last: Vec<(f64, f64)>,
    /// The legend's labels of the two years.
    pub labels: (String, String),
}

/// Draws a population pyramid.
pub fn pyramid(p: &Pyramid, lang: Lang) -> Res<String> {
    let m = p
        .first
        .iter()
        .chain(&p.last)
        .flat_map(|(a, b)| [*a, *b])
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.08;
    let top = p.first.len().max(p.last.len()) as f64;
    let step = tick_step(0.0, m);
    svg((860, 520), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&p.title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(44)
            .build_cartesian_2d(-m..m, 0.0..top)
            .map_err(err)?;
        let xfmt = |x: &f64| lang.tick(x.abs(), step);
        let yfmt = |y: &f64| format!("{y:.0}");
        chart
            .configure_mesh()
            .x_labels(9)
            .y_labels(11)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .x_desc(lang.t(
                "henkilöä (miehet vasemmalla, naiset oikealla)",
                "persons (men left, women right)",
            ))
            .y_desc(lang.t("ikä", "age"))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(222, 222, 222))
            .axis_desc_style(("sans-serif", 13))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        let (men, women) = (color(0), color(3));
        for (side, col) in [(-1.0, men), (1.0, women)] {
            let bars = p.first.iter().enumerate().map(move |(a, (mv, wv))| {
                let v = if side < 0.0 { *mv } else { *wv };
                Rectangle::new(
                    [(0.0, a as f64 + 0.08), (side * v, a as f64 + 0.92)],
                    col.mix(0.45).filled(),
                )
            });
            let series = chart.draw_series(bars).map_err(err)?;
            if side < 0.0 {
                series.label(p.labels.0.as_str()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], col.mix(0.45).filled())
                });
            }
        }
        for side in [-1.0, 1.0] {
            let mut pts = Vec::with_capacity(2 * p.last.len());
            for (a, (mv, wv)) in p.last.iter().enumerate() {
                let v = side * if side < 0.0 { *mv } else { *wv };
                pts.push((v, a as f64));
                pts.push((v, a as f64 + 1.0));
            }
            let series = chart
                .draw_series(LineSeries::new(pts, BLACK.stroke_width(2)))
                .map_err(err)?;
            if side < 0.0 {
                series.label(p.labels.1.as_str()).legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2))
                });
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        for (x, label, col) in [
            (-0.95 * m, lang.t("Miehet", "Men"), men),
            (0.55 * m, lang.t("Naiset", "Women"), women),
        ] {
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (x, 0.9 * top),
                    ("sans-serif", 15).into_font().color(&col),
                )))
                .map_err(err)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_one_svg_with_its_labels() {
        let c = YearChart {
            title: "Demand".into(),
            y_desc: "pupils".into(),
            lines: vec![Line {
                label: "total".into(),
                points: vec![(2024, 10.0), (2025, 12.0), (2026, 11.0)],
                color: 0,
                width: 2,
            }],
            bands: vec![Band {
                label: "p05–p95".into(),
                points: vec![(2024, 9.0, 11.0), (2025, 10.0, 14.0), (2026, 9.0, 13.0)],
                color: 0,
                alpha: 0.2,
            }],
            size: WIDE,
            ..YearChart::default()
        };
        let s = years(&c, Lang::En).unwrap();
        assert!(
            s.starts_with("<svg") && s.trim_end().ends_with("</svg>"),
            "{s}"
        );
        assert_eq!(s.matches("<svg").count(), 1);
        // The texts of the SVG's `<text>` elements.
        let texts: Vec<&str> = s
            .split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
            .collect();
        for text in ["Demand", "pupils", "2025", "total", "p05–p95"] {
            assert!(texts.contains(&text), "{text} missing from {texts:?}");
        }
        assert!(s.contains("<polyline") && s.contains("<polygon"));
    }

    #[test]
    fn ticks_round_to_one_two_or_five() {
        assert_eq!(tick_step(0.0, 6.0), 1.0);
        assert_eq!(tick_step(0.0, 1300.0), 200.0);
        assert!((tick_step(0.0, 0.3) - 0.05).abs() < 1e-12);
    }
}
