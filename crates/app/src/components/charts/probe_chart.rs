//! Probe test AUROC by hook for the logistic and mass-mean probes, drawn against the
//! random-direction baseline (a band from the mean to the best direction) and the
//! shuffled-label baseline (a dashed grey line).

use plotters::prelude::*;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use hawthorne_probe::Report;

use super::common::{
    ticked,
    anchored, err, frame, kind_label, Glyph, Marker, file_stem, finite_range, finite_runs, fmt3, full, hook_label, index_label, index_ticks, message, root,
    use_report_canvas, HPos, ReportProps, VPos, AXIS_PX, BLUE, FONT, GREY, LABEL_PX, LIGHT_GREY, VERMILLION,
};
use super::export::DownloadPng;

const HEIGHT: u32 = 440;

fn draw(canvas: HtmlCanvasElement, report: &Report) -> Result<(), String> {
    let root = root(canvas)?;
    let probes = &report.probes;
    let title = format!("Probe test AUROC by hook — {}", report.provenance.model_id);
    let all = probes.iter().flat_map(|h| {
        let rb = h.random_directions.as_ref();
        [
            h.logistic.auroc,
            h.mass_mean.auroc,
            rb.map_or(f64::NAN, |r| r.best_auroc),
            h.shuffled_labels.as_ref().map_or(f64::NAN, |m| m.auroc),
        ]
    });
    if finite_range(all).is_none() {
        return message(&root, &title, "No finite AUROC to plot.");
    }
    let n = probes.len();
    let labels: Vec<String> = probes.iter().map(|h| hook_label(&h.hook)).collect();
    let x = |i: usize| i as f64;
    let n_random = probes.iter().find_map(|h| h.random_directions.as_ref()).map_or(0, |r| r.n);
    let entries = [
        ("logistic".to_string(), Glyph::Line(BLUE, Marker::Circle)),
        ("mass-mean".to_string(), Glyph::Line(VERMILLION, Marker::Triangle)),
        (format!("random directions: mean to best of {n_random}"), Glyph::Swatch(GREY.mix(0.22))),
        ("shuffled labels".to_string(), Glyph::Dashed(GREY, Marker::None)),
    ];
    let body = frame(&root, &title, &entries)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(14)
        .margin_top(6)
        .x_label_area_size(56)
        .y_label_area_size(64)
        .build_cartesian_2d(ticked(-0.5..n as f64 - 0.5, index_ticks(n, 24)), 0f64..1f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("hook (i = resid_post of block i, emb = embedding)")
        .y_desc("test AUROC")
        .x_label_formatter(&|v| index_label(&labels, *v))
        .y_labels(11)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(236, 236, 236))
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(err)?;

    // Random directions: a band from the mean to the best direction, broken where missing.
    let band_style = GREY.mix(0.22).filled();
    let mut run: Vec<(f64, f64, f64)> = vec![];
    let mut runs = vec![];
    for (i, h) in probes.iter().enumerate() {
        match h.random_directions.as_ref().filter(|r| r.mean_auroc.is_finite() && r.best_auroc.is_finite()) {
            Some(r) => run.push((x(i), r.mean_auroc, r.best_auroc)),
            None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    for run in &runs {
        if let [(xi, lo, hi)] = run.as_slice() {
            chart.draw_series([Rectangle::new([(xi - 0.2, *lo), (xi + 0.2, *hi)], band_style)]).map_err(err)?;
        } else {
            let mut poly: Vec<(f64, f64)> = run.iter().map(|&(xi, _, hi)| (xi, hi)).collect();
            poly.extend(run.iter().rev().map(|&(xi, lo, _)| (xi, lo)));
            chart.draw_series([Polygon::new(poly, band_style)]).map_err(err)?;
            chart
                .draw_series([PathElement::new(run.iter().map(|&(xi, _, hi)| (xi, hi)).collect::<Vec<_>>(), GREY.mix(0.6))])
                .map_err(err)?;
        }
    }

    // Chance.
    chart
        .draw_series(DashedLineSeries::new([(-0.5, 0.5), (n as f64 - 0.5, 0.5)], 3, 5, LIGHT_GREY.stroke_width(2)))
        .map_err(err)?;
    chart
        .draw_series([Text::new("chance", (n as f64 - 0.5, 0.5), anchored(14, GREY, HPos::Right, VPos::Bottom))])
        .map_err(err)?;

    // Shuffled labels.
    let shuffled = probes.iter().enumerate().map(|(i, h)| (x(i), h.shuffled_labels.as_ref().map_or(f64::NAN, |m| m.auroc)));
    for run in finite_runs(shuffled) {
        if run.len() == 1 {
            chart.draw_series(run.iter().map(|&p| Cross::new(p, 5, GREY.stroke_width(2)))).map_err(err)?;
        }
        chart.draw_series(DashedLineSeries::new(run, 8, 5, GREY.stroke_width(2))).map_err(err)?;
    }

    // The probes: logistic (blue circles), mass-mean (vermillion triangles).
    let logistic = probes.iter().enumerate().map(|(i, h)| (x(i), h.logistic.auroc));
    for run in finite_runs(logistic) {
        chart.draw_series(LineSeries::new(run.clone(), BLUE.stroke_width(2))).map_err(err)?;
        chart.draw_series(run.into_iter().map(|p| Circle::new(p, 5, BLUE.filled()))).map_err(err)?;
    }
    let mass_mean = probes.iter().enumerate().map(|(i, h)| (x(i), h.mass_mean.auroc));
    for run in finite_runs(mass_mean) {
        chart.draw_series(LineSeries::new(run.clone(), VERMILLION.stroke_width(2))).map_err(err)?;
        chart.draw_series(run.into_iter().map(|p| TriangleMarker::new(p, 6, VERMILLION.filled()))).map_err(err)?;
    }

    root.present().map_err(err)
}

fn aria_label(report: &Report) -> String {
    let best = |get: fn(&hawthorne_probe::report::HookProbes) -> f64| {
        report
            .probes
            .iter()
            .filter(|h| get(h).is_finite())
            .max_by(|a, b| get(a).total_cmp(&get(b)))
            .map(|h| format!("{} at {}", fmt3(get(h)), h.hook))
            .unwrap_or_else(|| "none".into())
    };
    let random = finite_range(report.probes.iter().filter_map(|h| h.random_directions.as_ref().map(|r| r.best_auroc)));
    format!(
        "Line chart of probe test AUROC over {} hooks. Best logistic {}; best mass-mean {}; best random direction {}.",
        report.probes.len(),
        best(|h| h.logistic.auroc),
        best(|h| h.mass_mean.auroc),
        random.map_or("not computed".into(), |(_, hi)| fmt3(hi)),
    )
}

/// Test AUROC by hook for both probe kinds, with the random-direction band and the
/// shuffled-label line.
#[component]
pub fn ProbeChart(props: &ReportProps) -> Html {
    let report = &props.report;
    let (canvas, error) = use_report_canvas(report, draw);
    let heading = html! { <h2 id="probe-chart-heading">{"Probes by layer, against baselines"}</h2> };
    if report.probes.is_empty() {
        return html! {
            <section class="panel wide" aria-labelledby="probe-chart-heading" data-testid="probe-section">
                {heading}
                <p class="muted">{"This run trained no probes."}</p>
            </section>
        };
    }
    let n_random = report.probes.iter().find_map(|h| h.random_directions.as_ref()).map_or(0, |r| r.n);
    html! {
        <section class="panel wide" aria-labelledby="probe-chart-heading" data-testid="probe-section">
            {heading}
            <p class="muted">{format!(
                "A probe reads the cue only where its AUROC on held-out {} rises clearly above the grey band of {} random directions and the dashed shuffled-label line; 0.5 is chance.",
                if report.split.is_empty() { "prompts".to_string() } else { format!("prompts (split {})", kind_label(&report.split)) },
                n_random,
            )}</p>
            if let Some(u) = &report.test_units {
                <p class="muted" data-testid="test-units">{format!(
                    "Test scores pooled over {} fold(s): {} prompts from {} observed and {} unobserved framings and {} tasks. \
                     Prompts that share a framing are not independent, so each interval resamples whole framings and tasks: \
                     {} + {} framings stand behind every number.",
                    report.n_folds, u.prompts, u.negative_framings, u.positive_framings, u.tasks, u.negative_framings, u.positive_framings
                )}</p>
            }
            if let Some(c) = &report.controls {
                <p class={classes!("verdict", if c.verdict.evidence { "evidence" } else { "no-evidence" })} data-testid="verdict">
                    <strong>{"Verdict. "}</strong>{c.verdict.text.replace('`', "")}
                </p>
            }
            if let Some(c) = &report.layer_choice {
                <p class="muted" data-testid="layer-choice">{format!(
                    "Layer chosen on validation framings, never on the test set, for the {} probe: {}. Test AUROC there: {} [{}, {}]; choosing the best layer on the test set would have reported {}.",
                    c.probe.replace('_', "-"),
                    c.chosen.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>().join(", "),
                    fmt3(c.test.auroc), fmt3(c.test.auroc_ci[0]), fmt3(c.test.auroc_ci[1]), fmt3(c.best_on_test)
                )}</p>
            }
            if let Some(c) = &report.controls {
                <details open=true>
                    <summary>{"Controls on the same test prompts"}</summary>
                    <table data-testid="controls-table">
                        <thead><tr><th scope="col">{"control"}</th><th scope="col">{"AUROC [95% CI]"}</th></tr></thead>
                        <tbody>
                            if let Some(l) = &report.layer_choice {
                                <tr><th scope="row">{format!("{} probe, layer chosen on validation", l.probe.replace('_', "-"))}</th>
                                    <td>{format!("{} [{}, {}]", fmt3(l.test.auroc), fmt3(l.test.auroc_ci[0]), fmt3(l.test.auroc_ci[1]))}</td></tr>
                            }
                            { for c.lexical.iter().chain(c.random.as_ref()).map(|r| html! {
                                <tr data-control={r.name.clone()}><th scope="row">{&r.label}</th>
                                    <td>{format!("{} [{}, {}]", fmt3(r.metrics.auroc), fmt3(r.metrics.auroc_ci[0]), fmt3(r.metrics.auroc_ci[1]))}</td></tr>
                            }) }
                            { for c.groups.iter().map(|g| html! {
                                <tr data-group={g.group.clone()}><th scope="row">{format!("probe on test group {} ({} + {} framings)", g.group, g.units.negative_framings, g.units.positive_framings)}</th>
                                    <td>{format!("{} [{}, {}]{}", fmt3(g.metrics.auroc), fmt3(g.metrics.auroc_ci[0]), fmt3(g.metrics.auroc_ci[1]),
                                        g.tfidf_auroc.map_or(String::new(), |a| format!(" (TF-IDF words alone: {})", fmt3(a))))}</td></tr>
                            }) }
                        </tbody>
                    </table>
                    if let Some(p) = &c.permutation {
                        <p class="muted" data-testid="permutation">{format!(
                            "Permutation test: the whole pipeline rerun with the framings' conditions permuted {} times; permuted labels reach {} on average (95th percentile {}); p = {}.",
                            p.n, fmt3(p.null_mean), fmt3(p.null_p95), if p.p_value < 0.001 { format!("{:.1e}", p.p_value) } else { format!("{:.3}", p.p_value) }
                        )}</p>
                    }
                </details>
            }
            <canvas ref={canvas.clone()} width={super::common::WIDTH.to_string()} height={HEIGHT.to_string()}
                role="img" data-testid="probe-chart" aria-label={aria_label(report)} />
            if let Some(e) = error { <p class="error">{format!("Could not draw the chart: {e}")}</p> }
            <DownloadPng canvas={canvas} filename={format!("{}-probes.png", file_stem(report))} what="the probe chart" />
            <details>
                <summary>{"Numbers"}</summary>
                <table data-testid="probe-table">
                    <thead><tr>
                        <th scope="col">{"hook"}</th>
                        <th scope="col">{"logistic AUROC [95% CI]"}</th>
                        <th scope="col">{"logistic test accuracy"}</th>
                        <th scope="col">{"mass-mean AUROC [95% CI]"}</th>
                        <th scope="col">{"mass-mean test accuracy"}</th>
                        <th scope="col">{format!("random directions: mean / best of {n_random}")}</th>
                        <th scope="col">{"shuffled labels AUROC"}</th>
                    </tr></thead>
                    <tbody>
                        { for report.probes.iter().map(|h| {
                            let rb = h.random_directions.as_ref();
                            let sh = h.shuffled_labels.as_ref();
                            html! {
                                <tr data-hook={h.hook.clone()}
                                    data-logistic-auroc={full(h.logistic.auroc)}
                                    data-mass-mean-auroc={full(h.mass_mean.auroc)}
                                    data-random-best={rb.map(|r| full(r.best_auroc))}
                                    data-random-mean={rb.map(|r| full(r.mean_auroc))}
                                    data-shuffled-auroc={sh.map(|m| full(m.auroc))}>
                                    <th scope="row">{&h.hook}</th>
                                    <td>{format!("{} [{}, {}]", fmt3(h.logistic.auroc), fmt3(h.logistic.auroc_ci[0]), fmt3(h.logistic.auroc_ci[1]))}</td>
                                    <td>{fmt3(h.logistic.test_accuracy)}</td>
                                    <td>{format!("{} [{}, {}]", fmt3(h.mass_mean.auroc), fmt3(h.mass_mean.auroc_ci[0]), fmt3(h.mass_mean.auroc_ci[1]))}</td>
                                    <td>{fmt3(h.mass_mean.test_accuracy)}</td>
                                    <td>{rb.map_or("–".into(), |r| format!("{} / {}", fmt3(r.mean_auroc), fmt3(r.best_auroc)))}</td>
                                    <td>{sh.map_or("–".into(), |m| fmt3(m.auroc))}</td>
                                </tr>
                            }
                        }) }
                    </tbody>
                </table>
            </details>
        </section>
    }
}
