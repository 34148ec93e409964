//! The workshop rail: the current lesson's explanation with previous/next links, and the list
//! of every lesson (each a share link). In presenter mode the links keep presenter mode on and
//! the arrow keys step through the lessons.

use yew::prelude::*;

use crate::lessons::{fragment, LESSONS};
use crate::state::AppContext;

/// The link to lesson `i` (0-based), in presenter mode when `presenter`.
pub fn lesson_href(i: usize, presenter: bool) -> String {
    let f = fragment(i).unwrap_or_default();
    if presenter { format!("{f}&present=1") } else { f }
}

/// `fragment` with `&present=1` added or removed.
pub fn with_presenter(fragment: &str, on: bool) -> String {
    let kept: Vec<&str> = fragment.trim_start_matches('#').split('&').filter(|kv| !kv.is_empty() && !kv.starts_with("present=")).collect();
    let mut out = format!("#{}", kept.join("&"));
    if on {
        out.push_str(if kept.is_empty() { "present=1" } else { "&present=1" });
    }
    out
}

#[component]
pub fn LessonPanel() -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let current = state.lesson;
    let presenter = state.presenter;
    let list = html! {
        <details class="lesson-list" open={current.is_none()}>
            <summary>{format!("Workshop: {} guided steps", LESSONS.len())}</summary>
            <ol>
                { for LESSONS.iter().enumerate().map(|(i, l)| html! {
                    <li>
                        <a href={lesson_href(i, presenter)} data-testid={format!("lesson-link-{}", i + 1)}
                           aria-current={(current == Some(i + 1)).then_some("step")}>{l.title}</a>
                    </li>
                }) }
            </ol>
        </details>
    };
    let Some(n) = current else {
        return html! {
            <section class="lessons panel" aria-label="Workshop lessons">
                <p class="muted">{"New here? Follow the workshop: each step opens the experiment it talks about."}</p>
                {list}
            </section>
        };
    };
    let lesson = &LESSONS[n - 1];
    html! {
        <section class="lessons panel" aria-labelledby="lesson-heading" data-testid="lesson" data-lesson={n.to_string()}>
            <h2 id="lesson-heading">{format!("Lesson {n} of {}: {}", LESSONS.len(), lesson.title)}</h2>
            <p class="lesson-text">{lesson.text}</p>
            <nav class="row" aria-label="Lesson navigation">
                if n > 1 {
                    <a class="button" href={lesson_href(n - 2, presenter)} data-testid="lesson-prev">{"← Previous"}</a>
                }
                if n < LESSONS.len() {
                    <a class="button" href={lesson_href(n, presenter)} data-testid="lesson-next">{"Next →"}</a>
                }
            </nav>
            if presenter {
                <p class="muted">{"Keys: → or Page Down for the next step, ← or Page Up for the previous one."}</p>
            }
            {list}
        </section>
    }
}
