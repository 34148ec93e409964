//! Renders a list of heavy panels one per browser task, so a new report never blocks the page.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct StagedProps {
    pub children: Children,
    /// A new value starts again from the first child (the report's identity).
    pub generation: usize,
}

/// Shows its first child at once and each following one in its own task (a `setTimeout(0)`
/// after the previous render). Building all the report's panels and tables in one go took
/// 60–100 ms of the main thread; one at a time, each task stays well under the 50 ms budget.
#[function_component(Staged)]
pub fn staged(props: &StagedProps) -> Html {
    let stage = use_state(|| (props.generation, 1usize));
    let shown = if stage.0 == props.generation { stage.1 } else { 1 };
    let total = props.children.len();
    {
        let (stage, generation) = (stage.clone(), props.generation);
        use_effect_with((generation, shown), move |&(generation, shown)| {
            let next = (shown < total)
                .then(|| gloo::timers::callback::Timeout::new(0, move || stage.set((generation, shown + 1))));
            move || drop(next)
        });
    }
    html! { <>{ for props.children.iter().take(shown) }</> }
}
