//! Chart layout arithmetic with no browser in it: scales and their ticks, text width estimates,
//! wrapping, and the choice of how x labels are drawn so that none overlaps. Unit-tested
//! natively; `figure.rs` draws with it.

/// Width of `text` at `px`, estimated generously (0.6 em a character), so that labels laid out
/// by this estimate never touch in any common sans-serif font.
pub fn text_width(text: &str, px: f64) -> f64 {
    text.chars().count() as f64 * px * 0.6
}


/// How values map to one axis.
#[derive(Debug, Clone)]
pub enum Scale {
    /// One band per label, centred on 0, 1, 2, …; the label shown may be shortened, and the full
    /// text is the second element (shown on hover).
    Bands(Vec<(String, String)>),
    /// A linear range with ticks at the given values.
    Linear { lo: f64, hi: f64, ticks: Vec<f64>, format: TickFormat },
    /// A base-10 logarithmic range (lo > 0).
    Log { lo: f64, hi: f64 },
}

impl Scale {
    pub fn domain(&self) -> (f64, f64) {
        match self {
            Scale::Bands(b) => (-0.5, b.len() as f64 - 0.5),
            Scale::Linear { lo, hi, .. } => (*lo, *hi),
            Scale::Log { lo, hi } => (lo.log10(), hi.log10()),
        }
    }

    /// Maps a value onto `[a, b]` (pixels).
    pub fn map(&self, v: f64, a: f64, b: f64) -> f64 {
        let (lo, hi) = self.domain();
        let v = if matches!(self, Scale::Log { .. }) { v.max(1e-300).log10() } else { v };
        a + (v - lo) / (hi - lo).max(1e-12) * (b - a)
    }

    /// Tick positions (data values) and labels.
    pub fn ticks(&self) -> Vec<(f64, String, String)> {
        match self {
            Scale::Bands(b) => b.iter().enumerate().map(|(i, (s, f))| (i as f64, s.clone(), f.clone())).collect(),
            Scale::Linear { ticks, format, .. } => ticks.iter().map(|&t| (t, format.format(t), format.format(t))).collect(),
            Scale::Log { lo, hi } => {
                // From the decade below `lo`: its 2× and 5× may lie inside the range.
                let (a, b) = (lo.log10().floor() as i32, hi.log10().floor() as i32);
                let mut out = vec![];
                for e in a..=b {
                    for m in [1.0, 2.0, 5.0] {
                        let v = m * 10f64.powi(e);
                        if v >= *lo && v <= *hi {
                            out.push((v, log_label(v), log_label(v)));
                        }
                    }
                }
                if out.len() > 8 {
                    out.retain(|(v, _, _)| (v.log10().fract()).abs() < 1e-9);
                }
                out
            }
        }
    }
}

fn log_label(v: f64) -> String {
    if v >= 1.0 { format!("{v:.0}") } else { format!("{v}") }
}


/// How the x labels of a panel are drawn at a given width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XLabels {
    /// Label every `step`-th tick.
    pub step: usize,
    /// Lines per label (wrapped at spaces).
    pub lines: usize,
    pub rotated: bool,
    /// Height the labels take under the axis.
    pub height: f64,
}

/// Splits a label into at most `max_lines` lines of at most `width` pixels, at its line breaks
/// and then at spaces, if it can.
pub fn wrap(text: &str, width: f64, max_lines: usize, px: f64) -> Option<Vec<String>> {
    let mut lines: Vec<String> = vec![];
    for para in text.split('\n') {
        let mut first = true;
        for word in para.split(' ') {
            match lines.last_mut() {
                Some(last) if !first && text_width(&format!("{last} {word}"), px) <= width => {
                    last.push(' ');
                    last.push_str(word);
                }
                _ => lines.push(word.to_string()),
            }
            first = false;
        }
    }
    (lines.len() <= max_lines && lines.iter().all(|l| text_width(l, px) <= width)).then_some(lines)
}

/// Chooses how to draw x labels so that none overlaps another: horizontal (wrapped at spaces
/// if that helps), else rotated by 45°, thinning to every k-th label as needed.
pub fn x_labels(labels: &[String], spacing: f64, px: f64) -> XLabels {
    let gap = 8.0;
    let line_h = px * 1.25;
    if let Some(lines) = labels.iter().map(|l| wrap(l, spacing - gap, 3, px).map(|w| w.len())).collect::<Option<Vec<_>>>() {
        let lines = lines.into_iter().max().unwrap_or(1);
        return XLabels { step: 1, lines, rotated: false, height: line_h * lines as f64 + 6.0 };
    }
    let widest = labels.iter().map(|l| text_width(&l.replace('\n', " · "), px)).fold(0.0, f64::max);
    let step_h = ((widest + gap) / spacing.max(1e-9)).ceil().max(1.0) as usize;
    // Rotated labels: neighbours are `spacing · sin 45°` apart across their baselines.
    let step_r = ((px * 1.3) / (spacing * std::f64::consts::FRAC_1_SQRT_2).max(1e-9)).ceil().max(1.0) as usize;
    if step_h <= step_r {
        XLabels { step: step_h, lines: 1, rotated: false, height: line_h + 6.0 }
    } else {
        let height = widest * std::f64::consts::FRAC_1_SQRT_2 + px + 8.0;
        XLabels { step: step_r, lines: 1, rotated: true, height }
    }
}

/// Keeps y ticks at least a line and a half apart.
pub fn thin_y(ticks: Vec<(f64, String, String)>, scale: &Scale, height: f64, px_size: f64) -> Vec<(f64, String, String)> {
    if ticks.len() < 2 {
        return ticks;
    }
    let px = |v: f64| scale.map(v, height, 0.0);
    let min_gap = ticks.windows(2).map(|w| (px(w[0].0) - px(w[1].0)).abs()).fold(f64::INFINITY, f64::min);
    let step = ((px_size * 1.5) / min_gap.max(1e-9)).ceil().max(1.0) as usize;
    ticks.into_iter().step_by(step).collect()
}


/// Consecutive runs of items whose flag is true.
pub fn runs<T: Copy>(items: impl IntoIterator<Item = (T, bool)>) -> Vec<Vec<T>> {
    let mut out = vec![];
    let mut run = vec![];
    for (item, ok) in items {
        if ok {
            run.push(item);
        } else if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}


/// How a linear axis writes its ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickFormat {
    /// A fixed number of decimals.
    Fixed(usize),
    /// A whole percentage of a fraction.
    Percent,
    /// As few decimals as the value needs (at most 3).
    Short,
}

impl TickFormat {
    pub fn format(self, v: f64) -> String {
        match self {
            TickFormat::Fixed(d) => {
                let s = format!("{v:.d$}");
                if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') { s.trim_start_matches('-').to_string() } else { s }
            }
            TickFormat::Percent => format!("{:.0}%", v * 100.0),
            TickFormat::Short => {
                let s = format!("{v:.3}");
                let s = s.trim_end_matches('0').trim_end_matches('.');
                if s == "-0" { "0".into() } else { s.to_string() }
            }
        }
    }
}

/// A linear scale over `[lo, hi]` with about `n` ticks at round values (1, 2 or 5 × 10^k),
/// written with as many decimals as the step needs (so that no two ticks read the same).
pub fn linear(lo: f64, hi: f64, n: usize) -> Scale {
    let (lo, hi) = if hi - lo > 1e-12 { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).map(|t| if t.abs() < step * 1e-9 { 0.0 } else { t }).collect();
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    Scale::Linear { lo, hi, ticks, format: TickFormat::Fixed(decimals) }
}

/// Splits `text` into lines of at most `width` pixels at spaces, breaking a word that is wider
/// than a line wherever it must: for titles, captions and legends, which must fit whatever the
/// text (a long model id) and can be as many lines as they need.
pub fn wrap_hard(text: &str, width: f64, px: f64) -> Vec<String> {
    let per_line = ((width / (px * 0.6)).floor() as usize).max(1);
    let mut words: Vec<String> = vec![];
    for word in text.split(' ') {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() <= per_line {
            words.push(word.to_string());
        } else {
            words.extend(chars.chunks(per_line).map(|c| c.iter().collect::<String>()));
        }
    }
    wrap(&words.join(" "), width, usize::MAX, px).unwrap_or_else(|| vec![text.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_that_fit_stay_horizontal_on_one_line() {
        let labels: Vec<String> = ["emb", "0", "1", "2"].map(String::from).to_vec();
        let xl = x_labels(&labels, 100.0, 13.0);
        assert_eq!((xl.step, xl.lines, xl.rotated), (1, 1, false));
    }

    #[test]
    fn long_labels_wrap_at_their_breaks_before_rotating() {
        let labels = vec!["false claim\ngap +1.00".to_string(), "all\ngap +0.50".to_string()];
        let xl = x_labels(&labels, 110.0, 13.0);
        assert_eq!((xl.step, xl.lines, xl.rotated), (1, 2, false));
        assert_eq!(wrap(&labels[0], 110.0 - 8.0, 3, 13.0).unwrap(), vec!["false claim", "gap +1.00"]);
    }

    #[test]
    fn crowded_labels_rotate_or_thin_so_that_neighbours_never_touch() {
        let labels: Vec<String> = (0..40).map(|i| format!("oversight tampering {i}")).collect();
        for spacing in [6.0, 12.0, 25.0, 40.0] {
            let xl = x_labels(&labels, spacing, 13.0);
            let gap = spacing * xl.step as f64;
            if xl.rotated {
                // Rotated by 45°: baselines `gap · sin 45°` apart must clear a line of text.
                assert!(gap * std::f64::consts::FRAC_1_SQRT_2 >= 13.0 * 1.3 - 1e-9, "spacing {spacing}: {xl:?}");
            } else {
                let widest = labels.iter().map(|l| text_width(l, 13.0)).fold(0.0, f64::max);
                assert!(widest <= gap, "spacing {spacing}: {xl:?}");
            }
        }
    }

    #[test]
    fn a_word_wider_than_the_space_cannot_wrap() {
        assert_eq!(wrap("blocks.29.hook_resid_post", 40.0, 3, 13.0), None);
        assert_eq!(wrap("a b c d", 8.0, 3, 13.0), None, "four lines do not fit in three");
    }

    #[test]
    fn y_ticks_thin_to_a_line_and_a_half_apart() {
        let scale = linear(0.0, 1.0, 20);
        let ticks = thin_y(scale.ticks(), &scale, 100.0, 13.0);
        let px: Vec<f64> = ticks.iter().map(|(v, _, _)| scale.map(*v, 100.0, 0.0)).collect();
        assert!(ticks.len() >= 2);
        assert!(px.windows(2).all(|w| (w[0] - w[1]).abs() >= 13.0 * 1.5 - 1e-9), "{px:?}");
    }

    #[test]
    fn linear_ticks_are_round_and_inside_the_range() {
        let Scale::Linear { ticks, format, .. } = linear(-0.37, 1.12, 5) else { panic!("linear") };
        assert_eq!(ticks, vec![0.0, 0.5, 1.0]);
        assert_eq!(format, TickFormat::Fixed(1));
        let Scale::Linear { ticks, format, .. } = linear(0.0, 11.3, 4) else { panic!("linear") };
        assert_eq!(ticks, vec![0.0, 5.0, 10.0]);
        assert_eq!(format, TickFormat::Fixed(0));
        assert_eq!(TickFormat::Short.format(0.5), "0.5");
        assert_eq!(TickFormat::Short.format(-0.0), "0");
        assert_eq!(TickFormat::Short.format(10.0), "10");
        assert_eq!(TickFormat::Percent.format(0.25), "25%");
        assert_eq!(TickFormat::Fixed(1).format(-0.0), "0.0");
    }

    #[test]
    fn small_ranges_get_the_decimals_their_ticks_need() {
        // KL of a control organism: ticks 0.002 apart must not all read "0.00".
        let scale = linear(0.0, 0.0048, 4);
        let labels: Vec<String> = scale.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(labels, vec!["0.000", "0.002", "0.004"]);
    }

    #[test]
    fn hard_wrapping_breaks_a_word_wider_than_the_line() {
        let lines = wrap_hard("PCA of blocks.12.hook_resid_post — organism-deceptive", 120.0, 13.0);
        assert!(lines.len() >= 3, "{lines:?}");
        assert!(lines.iter().all(|l| text_width(l, 13.0) <= 120.0), "{lines:?}");
        assert_eq!(lines.concat().replace(' ', ""), "PCAofblocks.12.hook_resid_post—organism-deceptive");
    }

    #[test]
    fn log_scales_tick_at_one_two_five() {
        let s = Scale::Log { lo: 0.8, hi: 120.0 };
        let ticks: Vec<f64> = s.ticks().iter().map(|t| t.0).collect();
        assert_eq!(ticks, vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
        // Within one decade, and from the 5 of the lowest one.
        let ticks: Vec<f64> = Scale::Log { lo: 3.2, hi: 8.0 }.ticks().iter().map(|t| t.0).collect();
        assert_eq!(ticks, vec![5.0]);
        let ticks: Vec<f64> = Scale::Log { lo: 3.0, hi: 30.0 }.ticks().iter().map(|t| t.0).collect();
        assert_eq!(ticks, vec![5.0, 10.0, 20.0]);
        assert!((s.map(10.0, 0.0, 1.0) - (1.0 - 0.8f64.log10()) / (120f64.log10() - 0.8f64.log10())).abs() < 1e-12);
    }

    #[test]
    fn bands_centre_each_label_on_its_index() {
        let s = Scale::Bands(vec![("a".into(), "a".into()), ("b".into(), "b".into())]);
        assert_eq!(s.map(0.0, 0.0, 100.0), 25.0);
        assert_eq!(s.map(1.0, 0.0, 100.0), 75.0);
    }

    #[test]
    fn runs_break_at_missing_values() {
        let r = runs([(1, true), (2, true), (3, false), (4, true)]);
        assert_eq!(r, vec![vec![1, 2], vec![4]]);
    }
}
