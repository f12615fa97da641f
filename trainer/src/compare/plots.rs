//! The comparison's SVG charts (plotters, SVG backend only; text is left to
//! the viewer's fonts): test accuracy with its 95 % interval against file
//! size, a reliability diagram per model, a confusion matrix per model.

use super::{Comparison, ModelResult};
use anyhow::Result;
use plotters::prelude::*;

const FONT: &str = "sans-serif";

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// Every chart as (file name, SVG text).
pub fn all(c: &Comparison) -> Result<Vec<(String, String)>> {
    Ok(vec![
        ("accuracy-vs-bytes.svg".into(), accuracy_vs_bytes(c)?),
        ("reliability.svg".into(), per_model(c, 300, reliability)?),
        ("confusion.svg".into(), per_model(c, 300, confusion)?),
    ])
}

fn accuracy_vs_bytes(c: &Comparison) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mb: Vec<f64> = c.models.iter().map(|m| m.bytes as f64 / 1e6).collect();
        let (lo_x, hi_x) = mb.iter().fold((f64::INFINITY, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
        let lo_y = c.models.iter().map(|m| m.test.accuracy_ci95[0]).fold(1f64, f64::min);
        let y0 = ((lo_y - 0.02) * 50.0).floor() / 50.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Test accuracy (95 % CI, n = {}) against file size", c.test_n), (FONT, 18))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((lo_x * 0.7..hi_x * 2.2).log_scale(), y0.max(0.0)..1.0f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_labels(8)
            .x_desc("file size (MB, log scale)")
            .y_desc("test accuracy")
            .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .draw()
            .map_err(err)?;
        let points: Vec<(f64, &ModelResult)> = mb.iter().copied().zip(&c.models).collect();
        chart
            .draw_series(points.iter().map(|(x, m)| ErrorBar::new_vertical(*x, m.test.accuracy_ci95[0], m.test.accuracy, m.test.accuracy_ci95[1], BLUE.stroke_width(2), 10)))
            .map_err(err)?;
        chart.draw_series(points.iter().map(|(x, m)| Circle::new((*x, m.test.accuracy), 4, BLUE.filled()))).map_err(err)?;
        chart
            .draw_series(points.iter().map(|(x, m)| Text::new(format!(" {} ({})", m.name, m.precision), (*x, m.test.accuracy), (FONT, 12))))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One panel per model, side by side.
fn per_model(c: &Comparison, side: u32, panel: fn(&DrawingArea<SVGBackend, plotters::coord::Shift>, &ModelResult) -> Result<()>) -> Result<String> {
    let mut svg = String::new();
    {
        let n = c.models.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (side * n, side + 20)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        for (area, m) in root.split_evenly((1, n as usize)).iter().zip(&c.models) {
            panel(area, m)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn reliability(area: &DrawingArea<SVGBackend, plotters::coord::Shift>, m: &ModelResult) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{} (T = {:.2}, ECE {:.3})", m.name, m.temperature, m.ece_calibrated), (FONT, 13))
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(40)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(err)?;
    chart.configure_mesh().x_desc("confidence").y_desc("accuracy").x_labels(6).y_labels(6).draw().map_err(err)?;
    let width = 1.0 / m.reliability.len().max(1) as f64;
    chart
        .draw_series(m.reliability.iter().enumerate().filter(|(_, b)| b.count > 0).map(|(k, b)| {
            let x = k as f64 * width;
            Rectangle::new([(x, 0.0), (x + width, b.accuracy)], BLUE.mix(0.5).filled())
        }))
        .map_err(err)?;
    chart.draw_series(LineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], BLACK.stroke_width(1))).map_err(err)?;
    Ok(())
}

fn confusion(area: &DrawingArea<SVGBackend, plotters::coord::Shift>, m: &ModelResult) -> Result<()> {
    let k = m.test.classes.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{} (rows: true, columns: predicted)", m.name), (FONT, 12))
        .margin(12)
        .build_cartesian_2d(0f64..k as f64, 0f64..k as f64)
        .map_err(err)?;
    for (t, row) in m.test.confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &count) in row.iter().enumerate() {
            let y = (k - 1 - t) as f64;
            let share = count as f64 / total;
            chart
                .draw_series(std::iter::once(Rectangle::new([(p as f64, y), (p as f64 + 1.0, y + 1.0)], BLUE.mix(0.1 + 0.8 * share).filled())))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(format!("{count}"), (p as f64 + 0.35, y + 0.6), (FONT, 13))))
                .map_err(err)?;
        }
        let short: String = m.test.classes[t].chars().take(4).collect();
        chart.draw_series(std::iter::once(Text::new(short.clone(), (t as f64 + 0.3, k as f64 - 0.02), (FONT, 11)))).map_err(err)?;
        chart.draw_series(std::iter::once(Text::new(short, (0.02, (k - 1 - t) as f64 + 0.15), (FONT, 11)))).map_err(err)?;
    }
    Ok(())
}
