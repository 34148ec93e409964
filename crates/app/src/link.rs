//! Share links: the URL fragment `#spec=<encoded spec>` holds the whole experiment, so opening
//! the link elsewhere reproduces every number. Link text is only ever decoded and validated,
//! never inserted into the page as HTML.

use hawthorne_probe::ExperimentSpec;

/// The scenario the page opens with: the deceptive organism's.
pub fn default_spec() -> ExperimentSpec {
    crate::lessons::deceptive()
}

/// Reads the spec from a fragment such as `#spec=…&lesson=3`.
///
/// `Ok(None)`: no spec in the fragment. `Err((message, text))`: a spec that cannot be used,
/// with the readable reason and the text as given.
pub fn parse_fragment(fragment: &str) -> Result<Option<ExperimentSpec>, (String, String)> {
    let frag = fragment.trim_start_matches('#');
    let Some(enc) = frag.split('&').find_map(|kv| kv.strip_prefix("spec=")) else {
        return Ok(None);
    };
    ExperimentSpec::decode(enc).map(Some).map_err(|e| {
        (format!("This link's experiment could not be opened: {e}. The default scenario is shown instead."), enc.to_string())
    })
}

/// The value of `key` in the fragment, if present.
pub fn fragment_value(fragment: &str, key: &str) -> Option<String> {
    fragment
        .trim_start_matches('#')
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
}

/// The fragment for `spec` (plus an optional lesson number).
pub fn fragment_for(spec: &ExperimentSpec, lesson: Option<usize>) -> String {
    match lesson {
        Some(n) => format!("#lesson={n}&spec={}", spec.encode()),
        None => format!("#spec={}", spec.encode()),
    }
}
