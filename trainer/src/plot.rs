//! PNG plots for reports: example reconstructions, the training curve and error
//! distributions.
//!
//! Text is drawn with DejaVu Sans embedded in the binary, so plots come out the same on a
//! bare beam-line machine with no system fonts.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use ndarray::{Array2, ArrayView1};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use crate::data::EventShape;
use crate::train::TrainingLog;

/// What plotters reports when drawing into a PNG fails.
pub type DrawError = DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>;

/// A plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Plotters could not draw or write the file.
    #[error("cannot draw {path}: {source}")]
    Draw {
        /// The PNG file.
        path: PathBuf,
        /// What plotters said.
        #[source]
        source: DrawError,
    },
    /// There was nothing to draw.
    #[error("cannot draw {path}: {what}")]
    Empty {
        /// The PNG file.
        path: PathBuf,
        /// What was missing.
        what: &'static str,
    },
}

const FONT: &str = "sans-serif";
const RAW_COLOUR: RGBColor = RGBColor(40, 40, 40);
const RECONSTRUCTED_COLOUR: RGBColor = RGBColor(214, 39, 40);
const SECOND_COLOUR: RGBColor = RGBColor(31, 119, 180);

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // DejaVu Sans is a valid font; if registration ever failed, text would be missing
        // from the plots but they would still be drawn.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Draws the series labels of `chart` in a framed box, text `size` px high.
fn draw_legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    size: u32,
) -> Result<(), DrawError> {
    chart
        .configure_series_labels()
        .label_font((FONT, size))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

/// Runs `draw` on a white `width × height` PNG at `path`, turning plotters' errors into a
/// [`PlotError`] that names the file.
fn draw_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), DrawError>,
) -> Result<(), PlotError> {
    register_font();
    let error = |source: DrawError| PlotError::Draw {
        path: path.to_owned(),
        source,
    };
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(error)?;
    draw(&root).map_err(error)?;
    root.present().map_err(error)
}

/// Smallest range holding every value (a unit range around a constant), with 5 % margin.
fn value_range(values: impl IntoIterator<Item = f32>) -> Range<f32> {
    let (low, high) = values
        .into_iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !low.is_finite() || !high.is_finite() {
        return 0.0..1.0;
    }
    let margin = if high > low { 0.05 * (high - low) } else { 0.5 };
    (low - margin)..(high + margin)
}

/// How the rows and the two series of a [`pairs`] plot are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// One caption per row, first to last; as many rows are drawn (at most the events').
    pub rows: Vec<String>,
    /// The first series (black) and the second (red).
    pub series: [String; 2],
}

impl Comparison {
    /// The first `rows` events, raw against reconstructed.
    pub fn reconstructions(rows: usize) -> Self {
        Self {
            rows: (0..rows).map(|event| format!("event {event}")).collect(),
            series: ["raw".into(), "reconstructed".into()],
        }
    }
}

/// Example events (black) beside their reconstructions (red): the first 3 point clouds or
/// the first 4 of any other events (see [`pairs`]).
///
/// # Errors
/// [`PlotError`] if the file cannot be written.
pub fn examples(
    path: &Path,
    raw: &Array2<f32>,
    reconstructed: &Array2<f32>,
    shape: EventShape,
    point_clouds: bool,
    title: &str,
) -> Result<(), PlotError> {
    let rows = if point_clouds { 3 } else { 4 };
    let comparison = Comparison::reconstructions(rows);
    pairs(
        path,
        [raw, reconstructed],
        shape,
        point_clouds,
        &comparison,
        title,
    )
}

/// Two versions of each event (e.g. raw and reconstructed), one row per event as
/// `comparison` names them: point clouds as points sized by their weight ([`clouds`]), any
/// other event as curves or images ([`reconstructions`]).
///
/// # Errors
/// [`PlotError`] if the file cannot be written.
pub fn pairs(
    path: &Path,
    [first, second]: [&Array2<f32>; 2],
    shape: EventShape,
    point_clouds: bool,
    comparison: &Comparison,
    title: &str,
) -> Result<(), PlotError> {
    if point_clouds {
        clouds(path, first, second, shape, comparison, &[], title)
    } else {
        reconstructions(path, first, second, shape, comparison, title)
    }
}

/// Two versions of each event, one panel per row of `comparison`: traces for spectra and
/// waveforms (channels side by side), and two images for image-like events (`channels ≥ 8`,
/// e.g. 32 × 32 sprites).
///
/// # Errors
/// [`PlotError`] if the file cannot be written.
pub fn reconstructions(
    path: &Path,
    raw: &Array2<f32>,
    reconstructed: &Array2<f32>,
    shape: EventShape,
    comparison: &Comparison,
    title: &str,
) -> Result<(), PlotError> {
    let rows = comparison.rows.len().min(raw.nrows()).max(1);
    let image_like = shape.channels >= 8;
    let size = if image_like {
        (640, 40 + 300 * rows as u32)
    } else {
        (1200, 40 + 220 * rows as u32)
    };
    draw_png(path, size, |root| {
        let body = root.titled(title, (FONT, 22))?;
        for (event, panel) in body.split_evenly((rows, 1)).iter().enumerate() {
            if event >= raw.nrows() {
                break;
            }
            let (truth, estimate) = (raw.row(event), reconstructed.row(event));
            let caption = comparison.rows.get(event).map_or("", String::as_str);
            let [first, second] = &comparison.series;
            if image_like {
                let halves = panel.split_evenly((1, 2));
                image(&halves[0], truth, shape, &format!("{caption}: {first}"))?;
                image(&halves[1], estimate, shape, second)?;
            } else {
                let legend = (event == 0).then_some(&comparison.series);
                traces(panel, [truth, estimate], shape, caption, legend)?;
            }
        }
        Ok(())
    })
}

/// Two versions of each point cloud, one row per row of `comparison`, each point a circle
/// whose size follows its weight (the last feature, e.g. energy): the first in black, the
/// second in red, in two projections (feature 0 against 1, and 2 against 0, when there are
/// that many besides the weight). `names` names the features.
///
/// # Errors
/// [`PlotError`] if the file cannot be written.
pub fn clouds(
    path: &Path,
    raw: &Array2<f32>,
    reconstructed: &Array2<f32>,
    shape: EventShape,
    comparison: &Comparison,
    names: &[&str],
    title: &str,
) -> Result<(), PlotError> {
    let rows = comparison.rows.len().min(raw.nrows()).max(1);
    let features = shape.length.max(1);
    let coordinates = features.saturating_sub(1);
    let projections: Vec<(usize, usize)> = match coordinates {
        0 | 1 => vec![(0, 0)],
        2 => vec![(0, 1)],
        _ => vec![(0, 1), (2, 0)],
    };
    let name = |f: usize| {
        names
            .get(f)
            .map_or_else(|| format!("feature {f}"), |n| (*n).to_owned())
    };
    draw_png(
        path,
        (560 * projections.len() as u32, 40 + 360 * rows as u32),
        |root| {
            let body = root.titled(title, (FONT, 20))?;
            let panels = body.split_evenly((rows, projections.len()));
            for event in 0..rows {
                let clouds = [
                    (raw.row(event), RAW_COLOUR),
                    (reconstructed.row(event), RECONSTRUCTED_COLOUR),
                ];
                let weights = value_range(clouds.iter().flat_map(|(c, _)| {
                    c.iter()
                        .skip(coordinates)
                        .step_by(features)
                        .copied()
                        .collect::<Vec<_>>()
                }));
                for (&(h, v), panel) in projections.iter().zip(&panels[event * projections.len()..])
                {
                    let axis = |f: usize| {
                        value_range(clouds.iter().flat_map(|(c, _)| {
                            c.iter()
                                .skip(f)
                                .step_by(features)
                                .copied()
                                .collect::<Vec<_>>()
                        }))
                    };
                    let caption = comparison.rows.get(event).map_or("", String::as_str);
                    let mut chart = ChartBuilder::on(panel)
                        .caption(caption, (FONT, 14))
                        .margin(8)
                        .x_label_area_size(30)
                        .y_label_area_size(44)
                        .build_cartesian_2d(axis(h), axis(v))?;
                    chart
                        .configure_mesh()
                        .disable_mesh()
                        .x_desc(name(h))
                        .y_desc(name(v))
                        .label_style((FONT, 11))
                        .draw()?;
                    for (index, (cloud, colour)) in clouds.iter().enumerate() {
                        let points = cloud.exact_chunks(features).into_iter().map(|p| {
                            let weight =
                                (p[coordinates] - weights.start) / (weights.end - weights.start);
                            let radius = 2 + (8.0 * weight.clamp(0.0, 1.0)) as i32;
                            Circle::new((p[h], p[v]), radius, colour.mix(0.6).stroke_width(1))
                        });
                        let drawn = chart.draw_series(points)?;
                        if event == 0 {
                            let colour = *colour;
                            drawn
                                .label(comparison.series[index].as_str())
                                .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
                        }
                    }
                    if event == 0 {
                        draw_legend(&mut chart, 11)?;
                    }
                }
            }
            Ok(())
        },
    )
}

/// One event's two versions as curves, channels side by side, captioned `caption`; with
/// `legend`, the series' names in a legend.
fn traces(
    panel: &DrawingArea<BitMapBackend<'_>, Shift>,
    [truth, estimate]: [ArrayView1<'_, f32>; 2],
    shape: EventShape,
    caption: &str,
    legend: Option<&[String; 2]>,
) -> Result<(), DrawError> {
    let y_range = value_range(truth.iter().chain(estimate.iter()).copied());
    for (channel, area) in panel.split_evenly((1, shape.channels)).iter().enumerate() {
        let samples = channel * shape.length..(channel + 1) * shape.length;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{caption}, channel {channel}"), (FONT, 14))
            .margin(6)
            .x_label_area_size(22)
            .y_label_area_size(if channel == 0 { 44 } else { 8 })
            .build_cartesian_2d(0f32..shape.length as f32, y_range.clone())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(4)
            .y_labels(if channel == 0 { 4 } else { 0 })
            .label_style((FONT, 11))
            .draw()?;
        for (index, (values, colour)) in [(&truth, RAW_COLOUR), (&estimate, RECONSTRUCTED_COLOUR)]
            .into_iter()
            .enumerate()
        {
            let series = LineSeries::new(
                samples
                    .clone()
                    .map(|i| ((i - samples.start) as f32, values[i])),
                colour.stroke_width(1),
            );
            let drawn = chart.draw_series(series)?;
            if let (0, Some(names)) = (channel, legend) {
                drawn
                    .label(names[index].as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
            }
        }
        if let (0, Some(_)) = (channel, legend) {
            draw_legend(&mut chart, 11)?;
        }
    }
    Ok(())
}

fn image(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    values: ArrayView1<'_, f32>,
    shape: EventShape,
    caption: &str,
) -> Result<(), DrawError> {
    let range = value_range(values.iter().copied());
    let (rows, columns) = (shape.channels, shape.length);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 14))
        .margin(8)
        .build_cartesian_2d(0..columns, 0..rows)?;
    chart.draw_series((0..rows).flat_map(|r| {
        (0..columns).map(move |c| {
            let level = (values[r * columns + c] - range.start) / (range.end - range.start);
            let grey = (255.0 * (1.0 - level.clamp(0.0, 1.0))) as u8;
            // Row 0 at the top, as images are shown.
            let y = rows - 1 - r;
            Rectangle::new(
                [(c, y), (c + 1, y + 1)],
                RGBColor(grey, grey, grey).filled(),
            )
        })
    }))?;
    Ok(())
}

/// The training curve: validation nMSE from sampled latents and from deployed codes (left),
/// and the KL per event with its weight β (right), per epoch.
///
/// # Errors
/// [`PlotError`] if the file cannot be written or the log is empty.
pub fn training_curve(path: &Path, log: &TrainingLog, title: &str) -> Result<(), PlotError> {
    if log.epochs.is_empty() {
        return Err(PlotError::Empty {
            path: path.to_owned(),
            what: "the training log has no epochs",
        });
    }
    let last = log.epochs.len() as f32 + 0.5;
    draw_png(path, (1100, 420), |root| {
        let body = root.titled(title, (FONT, 20))?;
        let halves = body.split_evenly((1, 2));
        let curves = [
            (
                "validation nMSE",
                vec![
                    (
                        "sampled latents",
                        SECOND_COLOUR,
                        log.epochs
                            .iter()
                            .map(|e| e.validation_nmse)
                            .collect::<Vec<_>>(),
                    ),
                    (
                        "codes",
                        RECONSTRUCTED_COLOUR,
                        log.epochs.iter().map(|e| e.validation_code_nmse).collect(),
                    ),
                ],
            ),
            (
                "KL per event (nats)",
                vec![
                    (
                        "train",
                        SECOND_COLOUR,
                        log.epochs.iter().map(|e| e.train_kl).collect(),
                    ),
                    (
                        "validation",
                        RECONSTRUCTED_COLOUR,
                        log.epochs.iter().map(|e| e.validation_kl).collect(),
                    ),
                ],
            ),
        ];
        for (area, (y_label, series)) in halves.iter().zip(curves) {
            let y_range = value_range(
                series
                    .iter()
                    .flat_map(|(_, _, v)| v.iter().map(|&x| x as f32)),
            );
            let mut chart = ChartBuilder::on(area)
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.5f32..last, y_range)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(y_label)
                .label_style((FONT, 12))
                .draw()?;
            for (label, colour, values) in series {
                chart
                    .draw_series(LineSeries::new(
                        values
                            .iter()
                            .enumerate()
                            .map(|(i, &v)| (i as f32 + 1.0, v as f32)),
                        colour.stroke_width(2),
                    ))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
            }
            let best = log.best_epoch as f32;
            let bounds = chart.y_range();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    [(best, bounds.start), (best, bounds.end)],
                    BLACK.mix(0.4),
                )))?
                .label("kept epoch")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.4)));
            draw_legend(&mut chart, 12)?;
        }
        Ok(())
    })
}

/// A histogram of per-event errors (e.g. normalised MSE), with its median marked.
///
/// # Errors
/// [`PlotError`] if the file cannot be written or `errors` is empty.
pub fn error_histogram(
    path: &Path,
    errors: &[f64],
    x_label: &str,
    title: &str,
) -> Result<(), PlotError> {
    let mut sorted: Vec<f64> = errors.iter().copied().filter(|e| e.is_finite()).collect();
    if sorted.is_empty() {
        return Err(PlotError::Empty {
            path: path.to_owned(),
            what: "no finite errors to plot",
        });
    }
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    // Clip the far tail at the 99th percentile so the bulk stays readable.
    let top = sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)].max(1e-12);
    const BINS: usize = 40;
    let width = top / BINS as f64;
    let mut counts = [0u32; BINS];
    for &e in &sorted {
        counts[((e / width) as usize).min(BINS - 1)] += 1;
    }
    let highest = counts.iter().copied().max().unwrap_or(1);
    draw_png(path, (800, 480), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..top, 0u32..highest + highest / 10 + 1)?;
        chart
            .configure_mesh()
            .x_desc(format!("{x_label} (last bin holds the top 1 %)"))
            .y_desc("events")
            .label_style((FONT, 12))
            .draw()?;
        chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x = i as f64 * width;
            Rectangle::new([(x, 0), (x + width, c)], SECOND_COLOUR.mix(0.7).filled())
        }))?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                [(median, 0), (median, highest)],
                RECONSTRUCTED_COLOUR.stroke_width(2),
            )))?
            .label(format!("median {median:.4}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RECONSTRUCTED_COLOUR));
        draw_legend(&mut chart, 12)?;
        Ok(())
    })
}

/// One histogram panel per statistic (a column of each sample), the samples overlaid as
/// outlines on common bins spanning the first sample's 1st to 99th percentile: e.g. real
/// events against generated ones.
///
/// # Errors
/// [`PlotError`] if the file cannot be written or there is nothing to plot.
pub fn distributions(
    path: &Path,
    names: &[String],
    samples: &[(&str, &Array2<f64>)],
    title: &str,
) -> Result<(), PlotError> {
    if names.is_empty() || samples.is_empty() {
        return Err(PlotError::Empty {
            path: path.to_owned(),
            what: "no statistics to plot",
        });
    }
    const BINS: usize = 40;
    let colours = [
        RAW_COLOUR,
        SECOND_COLOUR,
        RECONSTRUCTED_COLOUR,
        RGBColor(44, 160, 44),
    ];
    let columns = names.len().min(3);
    let rows = names.len().div_ceil(columns);
    draw_png(
        path,
        (420 * columns as u32, 40 + 300 * rows as u32),
        |root| {
            let body = root.titled(title, (FONT, 18))?;
            let panels = body.split_evenly((rows, columns));
            for (statistic, (name, panel)) in names.iter().zip(&panels).enumerate() {
                let mut reference: Vec<f64> = samples[0]
                    .1
                    .column(statistic)
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .collect();
                reference.sort_by(f64::total_cmp);
                let Some(&last) = reference.last() else {
                    continue;
                };
                let at = |q: f64| {
                    reference[((q * reference.len() as f64) as usize).min(reference.len() - 1)]
                };
                let (low, mut high) = (at(0.01), at(0.99).max(at(0.01)));
                if high <= low {
                    high = low + last.abs().max(1.0);
                }
                let width = (high - low) / BINS as f64;
                let histograms: Vec<Vec<f64>> = samples
                    .iter()
                    .map(|(_, values)| {
                        let column = values.column(statistic);
                        let finite = column.iter().filter(|v| v.is_finite()).count().max(1);
                        let mut counts = vec![0.0; BINS];
                        for &v in column.iter().filter(|v| v.is_finite()) {
                            let bin = ((v - low) / width).floor();
                            if (0.0..BINS as f64).contains(&bin) {
                                counts[bin as usize] += 1.0 / finite as f64;
                            }
                        }
                        counts
                    })
                    .collect();
                let top = histograms
                    .iter()
                    .flatten()
                    .copied()
                    .fold(0.0, f64::max)
                    .max(1e-9);
                let mut chart = ChartBuilder::on(panel)
                    .caption(name, (FONT, 14))
                    .margin(8)
                    .x_label_area_size(28)
                    .y_label_area_size(44)
                    .build_cartesian_2d(low..high, 0.0..top * 1.1)?;
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .y_desc("fraction of events")
                    .label_style((FONT, 10))
                    .draw()?;
                for (index, ((label, _), counts)) in samples.iter().zip(&histograms).enumerate() {
                    let colour = colours[index % colours.len()];
                    let outline = counts.iter().enumerate().flat_map(|(bin, &c)| {
                        let x = low + bin as f64 * width;
                        [(x, c), (x + width, c)]
                    });
                    let drawn =
                        chart.draw_series(LineSeries::new(outline, colour.stroke_width(2)))?;
                    if statistic == 0 {
                        drawn
                            .label(*label)
                            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
                    }
                }
                if statistic == 0 {
                    draw_legend(&mut chart, 10)?;
                }
            }
            Ok(())
        },
    )
}

/// A named curve of `(x, y)` points.
pub type Series<'a> = (&'a str, Vec<(f64, f64)>);

/// Side-by-side panels of curves against a logarithmic x axis, each panel a y label and
/// its named series of `(x, y)` points (x > 0); non-finite points are left out.
///
/// # Errors
/// [`PlotError`] if the file cannot be written or a panel has no point to draw.
pub fn log_x_panels(
    path: &Path,
    x_label: &str,
    panels: &[(&str, Vec<Series<'_>>)],
    title: &str,
) -> Result<(), PlotError> {
    let colours = [RECONSTRUCTED_COLOUR, SECOND_COLOUR, RAW_COLOUR];
    let finite = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
        points
            .iter()
            .copied()
            .filter(|(x, y)| *x > 0.0 && x.is_finite() && y.is_finite())
            .collect()
    };
    let empty = panels
        .iter()
        .any(|(_, series)| series.iter().all(|(_, points)| finite(points).is_empty()));
    if panels.is_empty() || empty {
        return Err(PlotError::Empty {
            path: path.to_owned(),
            what: "a panel has no finite point to draw",
        });
    }
    draw_png(path, (520 * panels.len() as u32, 440), |root| {
        let body = root.titled(title, (FONT, 18))?;
        for ((y_label, series), area) in panels.iter().zip(body.split_evenly((1, panels.len()))) {
            let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| finite(p)).collect();
            let (x_low, x_high) = all.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
                (lo.min(p.0), hi.max(p.0))
            });
            let y = value_range(all.iter().map(|p| p.1 as f32));
            let mut chart = ChartBuilder::on(&area)
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(
                    (x_low / 1.5..x_high * 1.5).log_scale(),
                    f64::from(y.start)..f64::from(y.end),
                )?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(*y_label)
                .label_style((FONT, 11))
                .draw()?;
            for (index, (name, points)) in series.iter().enumerate() {
                let colour = colours[index % colours.len()];
                let points = finite(points);
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
                chart.draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, colour.filled())),
                )?;
            }
            draw_legend(&mut chart, 11)?;
        }
        Ok(())
    })
}

/// One row of [`images_and_curves`]: named images of one layout, then named curves.
#[derive(Debug, Clone)]
pub struct ImagesAndCurves<'a> {
    /// Captions and images (`rows × columns` values, row 0 drawn at the top).
    pub images: Vec<(String, ArrayView1<'a, f32>)>,
    /// The curves of the last panel.
    pub curves: Vec<Series<'a>>,
}

/// One row per entry of `rows`: its images side by side (greyscale, each scaled to its own
/// range), then a panel of its curves against `axes` (x label, y label).
///
/// # Errors
/// [`PlotError`] if the file cannot be written or there is nothing to draw.
pub fn images_and_curves(
    path: &Path,
    rows: &[ImagesAndCurves<'_>],
    shape: EventShape,
    axes: [&str; 2],
    title: &str,
) -> Result<(), PlotError> {
    let columns = rows.iter().map(|r| r.images.len()).max().unwrap_or(0) + 1;
    if rows.is_empty() {
        return Err(PlotError::Empty {
            path: path.to_owned(),
            what: "no rows to draw",
        });
    }
    let colours = [RAW_COLOUR, RECONSTRUCTED_COLOUR, SECOND_COLOUR, GREEN];
    draw_png(
        path,
        (260 * columns as u32 + 120, 40 + 260 * rows.len() as u32),
        |root| {
            let body = root.titled(title, (FONT, 20))?;
            for (row, strip) in rows.iter().zip(body.split_evenly((rows.len(), 1))) {
                let (left, right) = strip.split_horizontally(260 * (columns as u32 - 1));
                for ((caption, values), area) in
                    row.images.iter().zip(left.split_evenly((1, columns - 1)))
                {
                    image(&area, *values, shape, caption)?;
                }
                let all: Vec<(f64, f64)> = row
                    .curves
                    .iter()
                    .flat_map(|(_, p)| p.iter().copied())
                    .collect();
                let x = value_range(all.iter().map(|p| p.0 as f32));
                let y = value_range(all.iter().map(|p| p.1 as f32));
                let mut chart = ChartBuilder::on(&right)
                    .margin(8)
                    .x_label_area_size(32)
                    .y_label_area_size(48)
                    .build_cartesian_2d(
                        f64::from(x.start)..f64::from(x.end),
                        f64::from(y.start)..f64::from(y.end),
                    )?;
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .x_desc(axes[0])
                    .y_desc(axes[1])
                    .label_style((FONT, 11))
                    .draw()?;
                for (index, (name, points)) in row.curves.iter().enumerate() {
                    let colour = colours[index % colours.len()];
                    chart
                        .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                        .label(*name)
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
                }
                draw_legend(&mut chart, 11)?;
            }
            Ok(())
        },
    )
}

/// Bars of `values` in the order given (e.g. each bit's effect on the reconstructions,
/// largest first), labelled below by `labels` every few bars.
///
/// # Errors
/// [`PlotError`] if the file cannot be written or there is nothing to plot.
pub fn ranking(
    path: &Path,
    labels: &[String],
    values: &[f64],
    y_label: &str,
    title: &str,
) -> Result<(), PlotError> {
    let highest = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    if values.is_empty() || highest <= 0.0 {
        return Err(PlotError::Empty {
            path: path.to_owned(),
            what: "no positive values to plot",
        });
    }
    let count = values.len();
    draw_png(path, (1000, 420), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0..count, 0.0..highest * 1.05)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(count.min(16))
            .x_label_formatter(&|&i| labels.get(i).cloned().unwrap_or_default())
            .x_desc("ranked, largest first")
            .y_desc(y_label)
            .label_style((FONT, 11))
            .draw()?;
        chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
            Rectangle::new(
                [(i, 0.0), (i + 1, v.max(0.0))],
                SECOND_COLOUR.mix(0.8).filled(),
            )
        }))?;
        Ok(())
    })
}

/// Rate–distortion curves: nMSE against bits per event on a log axis, one line per method,
/// and a vertical line at `lossless_bits` (zstd's size; error zero).
///
/// # Errors
/// [`PlotError`] if the file cannot be written or there are no points.
pub fn rate_distortion(
    path: &Path,
    title: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    lossless_bits: f64,
) -> Result<(), PlotError> {
    let all = || series.iter().flat_map(|(_, points)| points.iter());
    let max_error = all().map(|p| p.1).fold(0.0, f64::max);
    let (low, high) = all().fold((lossless_bits, lossless_bits), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    if max_error <= 0.0 {
        return Err(PlotError::Empty {
            path: path.to_owned(),
            what: "no points to plot",
        });
    }
    let colours = [RECONSTRUCTED_COLOUR, SECOND_COLOUR, RGBColor(44, 160, 44)];
    draw_png(path, (900, 560), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((low / 1.5..high * 1.5).log_scale(), 0.0..max_error * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("bits per event (log scale)")
            .y_desc("nMSE (validation events)")
            .label_style((FONT, 13))
            .draw()?;
        for ((label, points), colour) in series.iter().zip(colours) {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                [(lossless_bits, 0.0), (lossless_bits, max_error * 1.1)],
                BLACK.mix(0.5).stroke_width(2),
            )))?
            .label("zstd -19, lossless (nMSE 0)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.5)));
        draw_legend(&mut chart, 13)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::EpochStats;

    /// A PNG that decodes to the expected size and is not one flat colour.
    fn assert_drawn(path: &Path, width: u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let png_width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        assert_eq!(png_width, width);
        // A blank white image of this size compresses to well under 2 KB.
        assert!(bytes.len() > 4_000, "{} bytes", bytes.len());
    }

    #[test]
    fn draws_point_clouds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clouds.png");
        // Two events of three (x, y, z, E) points.
        let raw = Array2::from_shape_fn((2, 12), |(e, i)| (e * 12 + i) as f32 % 7.0 + 0.5);
        let shape = EventShape {
            channels: 3,
            length: 4,
        };
        clouds(
            &path,
            &raw,
            &(&raw * 1.1),
            shape,
            &Comparison::reconstructions(2),
            &["x", "y", "z", "E"],
            "clouds",
        )
        .unwrap();
        assert_drawn(&path, 1120);
    }

    #[test]
    fn draws_every_plot() {
        let dir = tempfile::tempdir().unwrap();
        let spectra = EventShape {
            channels: 2,
            length: 16,
        };
        let raw = Array2::from_shape_fn((3, 32), |(n, i)| ((i + n) as f32 * 0.4).sin());
        let path = dir.path().join("spectra.png");
        let two = Comparison::reconstructions(2);
        reconstructions(
            &path,
            &raw,
            &raw.mapv(|v| v * 0.9),
            spectra,
            &two,
            "spectra",
        )
        .unwrap();
        assert_drawn(&path, 1200);

        let images = EventShape {
            channels: 8,
            length: 8,
        };
        let raw = Array2::from_shape_fn((1, 64), |(_, i)| (i % 9) as f32);
        let path = dir.path().join("images.png");
        let four = Comparison::reconstructions(4);
        reconstructions(&path, &raw, &raw, images, &four, "images").unwrap();
        assert_drawn(&path, 640);

        let epoch = |epoch: usize| EpochStats {
            epoch,
            beta: 0.02,
            train_reconstruction: 100.0 / epoch as f64,
            train_kl: 10.0 + epoch as f64,
            validation_nmse: 0.5 / epoch as f64,
            validation_code_nmse: 0.6 / epoch as f64,
            validation_kl: 11.0 + epoch as f64,
            learning_rate: 1e-3,
            seconds: 1.0,
        };
        let log = TrainingLog {
            epochs: (1..=5).map(epoch).collect(),
            best_epoch: 5,
            stopped_early: false,
        };
        let path = dir.path().join("loss.png");
        training_curve(&path, &log, "training").unwrap();
        assert_drawn(&path, 1100);

        let path = dir.path().join("errors.png");
        let errors: Vec<f64> = (0..500).map(|i| f64::from(i % 37) * 0.01).collect();
        error_histogram(&path, &errors, "nMSE", "errors").unwrap();
        assert_drawn(&path, 800);
    }

    #[test]
    fn empty_inputs_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let log = TrainingLog {
            epochs: Vec::new(),
            best_epoch: 0,
            stopped_early: false,
        };
        let err = training_curve(&path, &log, "t").unwrap_err();
        assert!(err.to_string().contains("loss.png"), "{err}");
        assert!(error_histogram(&path, &[f64::NAN], "x", "t").is_err());
    }
}
