//! "Compare models": the current spec run on several models one after another in the worker,
//! then a row per model (AUROC at the layer chosen on validation, its depth, the controls and
//! the verdict, as `hawthorne study` writes them) and AUROC against relative depth, one line
//! per model.

use yew::prelude::*;

use hawthorne_probe::study::StudyRow;

use super::charts::common::fmt3;
use super::charts::figure::{Chart, TickFormat, Colour, Figure, Glyph, Layer, Marker, Panel, Point, Scale, BLUE, GREEN, INK, ORANGE, VERMILLION};
use crate::state::{Action, AppContext, MODELS};

const COLOURS: [Colour; 4] = [BLUE, VERMILLION, GREEN, ORANGE];

fn figure(rows: &[StudyRow]) -> Figure {
    let title = "Test AUROC by relative depth (filled: layer chosen on validation)";
    if rows.iter().all(|r| r.curve.is_empty()) {
        return Figure::empty(title, "No probe results yet.");
    }
    let mut fig = Figure::new(title);
    fig.legend = rows.iter().enumerate().map(|(i, r)| (r.model.clone(), Glyph::Line(COLOURS[i % COLOURS.len()], Marker::Circle))).collect();
    fig.legend.push(("chance (0.5)".into(), Glyph::Dashed(INK, Marker::None)));
    let tenths = || (0..=5).map(|i| f64::from(i) / 5.0).collect::<Vec<_>>();
    let mut panel = Panel::new(
        240.0,
        Scale::Linear { lo: 0.0, hi: 1.0, ticks: tenths(), format: TickFormat::Fixed(1) },
        Scale::Linear { lo: 0.0, hi: 1.0, ticks: tenths(), format: TickFormat::Fixed(1) },
        "relative depth (0 = embedding, 1 = last block)",
        "test AUROC",
    );
    panel.layers.push(Layer::HRule { y: 0.5, colour: INK, dashed: true });
    for (i, r) in rows.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        panel.layers.push(Layer::Line {
            colour: c,
            dashed: false,
            width: 2.0,
            marker: Marker::Circle,
            points: r.curve.clone(),
            readouts: r.curve.iter().map(|(d, a)| format!("{} at relative depth {}: AUROC {}", r.model, fmt3(*d), fmt3(*a))).collect(),
        });
        if let (Some(d), Some(a)) = (r.relative_depth, r.auroc.filter(|a| a.is_finite())) {
            panel.layers.push(Layer::Points {
                points: vec![Point { x: d, y: a, colour: c, marker: Marker::Circle, filled: true, size: 7.0, readout: format!("{}: layer chosen on validation at depth {}, AUROC {}", r.model, fmt3(d), fmt3(a)) }],
            });
        }
    }
    fig.panels.push(panel);
    fig
}

#[derive(Properties, PartialEq)]
pub struct ComparePanelProps {
    /// Stops the run in progress (the comparison itself stops through the reducer).
    pub oncancel: Callback<()>,
}

#[component]
pub fn ComparePanel(props: &ComparePanelProps) -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let ticked = {
        let initial = state.compare_link.clone().unwrap_or_else(|| vec![MODELS[0].id, MODELS[1].id]);
        use_state(move || initial)
    };
    // A `#compare=` link followed inside the page ticks its models.
    {
        let ticked = ticked.clone();
        use_effect_with(state.compare_link.clone(), move |link| {
            if let Some(models) = link {
                ticked.set(models.clone());
            }
        });
    }
    let compare = state.compare.clone();
    let running = compare.as_ref().is_some_and(|c| c.running());
    let fig = {
        let rows = compare.as_ref().map(|c| c.rows.clone()).unwrap_or_default();
        use_memo(rows, |rows| figure(rows))
    };
    let ontoggle = |id: &'static str| {
        let ticked = ticked.clone();
        Callback::from(move |_: Event| {
            let mut v = (*ticked).clone();
            if let Some(i) = v.iter().position(|m| *m == id) {
                v.remove(i);
            } else {
                // Keep the panel's order, so a link's order does not depend on clicks.
                v.push(id);
                v.sort_by_key(|m| MODELS.iter().position(|x| x.id == *m));
            }
            ticked.set(v);
        })
    };
    let onstart = {
        let (state, ticked) = (state.clone(), ticked.clone());
        Callback::from(move |_| state.dispatch(Action::CompareStart((*ticked).clone())))
    };
    let onstop = {
        let (state, oncancel) = (state.clone(), props.oncancel.clone());
        Callback::from(move |_| {
            state.dispatch(Action::CompareStop);
            oncancel.emit(());
        })
    };
    // Deflating a spec takes milliseconds in the browser and the panel renders on every
    // progress message: encode only when the models or the spec change.
    let spec = compare.as_ref().map_or_else(|| state.spec.clone(), |c| c.spec.clone());
    let link = use_memo(((*ticked).clone(), spec), |(ticked, spec)| format!("#compare={}&spec={}", ticked.join(","), spec.encode()));
    let status = compare.as_ref().map(|c| {
        if let Some(e) = &c.error {
            format!("Stopped: {e}.")
        } else if c.stopped && c.next < c.models.len() {
            format!("Stopped after {} of {} models.", c.rows.len(), c.models.len())
        } else if c.next < c.models.len() {
            let stage = state.run.progress.map_or_else(
                || if state.ready_model().is_some_and(|m| m.url.ends_with(crate::state::model_for_id(c.models[c.next]).map_or("", |m| m.url))) { "starting".to_string() } else { "loading the model".to_string() },
                |(stage, done, total)| format!("{} — {done} of {total}", stage.label()),
            );
            format!("Model {} of {}: {} ({stage}).", c.next + 1, c.models.len(), c.models[c.next])
        } else {
            format!("Done: {} models on the same prompts.", c.rows.len())
        }
    });
    html! {
        <section class="panel wide" aria-labelledby="compare-heading" data-testid="compare-panel">
            <h2 id="compare-heading">{"Compare models"}</h2>
            <p class="muted">{"Runs the current experiment on each ticked model in turn, in this tab, and sets the probe at the layer chosen on validation beside its controls for each. The models load one after another; the largest is downloaded once."}</p>
            <fieldset disabled={running}>
                <legend>{"Models"}</legend>
                { for MODELS.iter().map(|m| html! {
                    <label class="check">
                        <input type="checkbox" checked={ticked.contains(&m.id)} onchange={ontoggle(m.id)} data-testid={format!("compare-{}", m.id)} />
                        {format!(" {} ({})", m.label, m.size)}
                    </label>
                }) }
            </fieldset>
            <div class="row">
                <button onclick={onstart} disabled={running || ticked.is_empty() || !state.worker_ready} data-testid="compare-start">{"Compare"}</button>
                if running {
                    <button type="button" onclick={onstop} data-testid="compare-stop">{"Stop"}</button>
                }
                <a href={(*link).clone()} data-testid="compare-link">{"Link to this comparison"}</a>
            </div>
            if let Some(s) = status {
                <p role="status" data-testid="compare-status" data-done={compare.as_ref().is_some_and(|c| !c.running()).to_string()}>{s}</p>
            }
            if let Some(c) = compare.as_ref().filter(|c| !c.rows.is_empty()) {
                <div class="table-scroll" tabindex="0" role="region" aria-label="Comparison table">
                <table data-testid="compare-table">
                    <thead><tr>
                        <th scope="col">{"model"}</th>
                        <th scope="col">{"AUROC at the layer chosen on validation [95% CI]"}</th>
                        <th scope="col">{"hook (relative depth)"}</th>
                        <th scope="col">{"chosen on the test set"}</th>
                        <th scope="col">{"best lexical control"}</th>
                        <th scope="col">{"random direction"}</th>
                        <th scope="col">{"permutation p"}</th>
                        <th scope="col">{"verdict"}</th>
                    </tr></thead>
                    <tbody>
                        { for c.rows.iter().map(|r| html! {
                            <tr data-model={r.model.clone()} data-auroc={r.auroc.map_or(String::new(), |a| a.to_string())}>
                                <th scope="row">{&r.model}</th>
                                <td>{format!("{}{}", fmt3(r.auroc.unwrap_or(f64::NAN)), r.auroc_ci.map_or(String::new(), |c| format!(" [{}, {}]", fmt3(c[0]), fmt3(c[1]))))}</td>
                                <td>{format!("{} ({})", r.chosen_hook.clone().unwrap_or_else(|| "–".into()), fmt3(r.relative_depth.unwrap_or(f64::NAN)))}</td>
                                <td>{fmt3(r.best_on_test.unwrap_or(f64::NAN))}</td>
                                <td>{r.best_lexical.as_ref().map_or("–".into(), |(l, a)| format!("{l}: {}", fmt3(*a)))}</td>
                                <td>{fmt3(r.random.unwrap_or(f64::NAN))}</td>
                                <td>{fmt3(r.p_value.unwrap_or(f64::NAN))}</td>
                                <td title={r.verdict.replace('`', "")}>{if r.evidence { "evidence" } else { "no evidence" }}</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
                </div>
                <Chart figure={fig} testid="compare-chart" filename="hawthorne-compare" what="the comparison chart"
                    caption={c.rows.iter().map(|r| match (r.auroc, r.relative_depth) {
                        (Some(a), Some(d)) => format!("{}: {} at relative depth {} ({}).", r.model, fmt3(a), fmt3(d), if r.evidence { "evidence" } else { "no evidence" }),
                        _ => format!("{}: no layer chosen.", r.model),
                    }).collect::<Vec<_>>().join(" ") + " Curves that rise above chance only where the controls do not are the ones to believe."}
                    summary={format!("Test AUROC against relative depth for {}.", c.rows.iter().map(|r| r.model.as_str()).collect::<Vec<_>>().join(", "))} />
            }
        </section>
    }
}
