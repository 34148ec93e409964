//! The study's chart: test AUROC of the selected probe against relative depth (0 = embedding,
//! 1 = last block), one line per model, the chosen layer marked, chance dashed. SVG through
//! plotters, the library the page's charts use, so the file opens anywhere without fonts.

use std::path::Path;

use anyhow::{anyhow, Result};
use hawthorne_probe::study::Study;
use plotters::prelude::*;

/// Okabe–Ito colours, as on the page.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

pub fn write_svg(study: &Study, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Test AUROC by relative depth (layer chosen on validation: filled marker)", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("relative depth (0 = embedding, 1 = last block)")
        .y_desc("test AUROC")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(DashedLineSeries::new([(0.0, 0.5), (1.0, 0.5)], 4, 4, BLACK.mix(0.5).stroke_width(1)))
        .map_err(|e| err(&e))?
        .label("chance")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.mix(0.5).stroke_width(1)));
    for (i, row) in study.rows.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let line: Vec<(f64, f64)> = row.curve.iter().copied().filter(|(_, a)| a.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(row.model.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, colour.stroke_width(1)))).map_err(|e| err(&e))?;
        if let (Some(d), Some(a)) = (row.relative_depth, row.auroc) {
            chart.draw_series([Circle::new((d, a), 6, colour.filled())]).map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
