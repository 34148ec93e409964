//! The workshop panel: the current lesson's explanation with previous/next links, and the list
//! of every lesson (each a share link).

use yew::prelude::*;

use crate::lessons::{fragment, LESSONS};
use crate::state::AppContext;

#[component]
pub fn LessonPanel() -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let current = state.lesson;
    let list = html! {
        <details class="lesson-list" open={current.is_none()}>
            <summary>{"Workshop: seven guided steps"}</summary>
            <ol>
                { for LESSONS.iter().enumerate().map(|(i, l)| html! {
                    <li>
                        <a href={fragment(i).unwrap_or_default()} data-testid={format!("lesson-link-{}", i + 1)}
                           aria-current={(current == Some(i + 1)).then_some("step")}>{l.title}</a>
                    </li>
                }) }
            </ol>
        </details>
    };
    let Some(n) = current else {
        return html! { <section class="lessons" aria-label="Workshop lessons">{list}</section> };
    };
    let lesson = &LESSONS[n - 1];
    html! {
        <section class="lessons panel" aria-labelledby="lesson-heading" data-testid="lesson" data-lesson={n.to_string()}>
            <h2 id="lesson-heading">{format!("Lesson {n} of {}: {}", LESSONS.len(), lesson.title)}</h2>
            <p>{lesson.text}</p>
            <nav class="row" aria-label="Lesson navigation">
                if n > 1 {
                    <a class="button" href={fragment(n - 2).unwrap_or_default()}>{"← Previous"}</a>
                }
                if n < LESSONS.len() {
                    <a class="button" href={fragment(n).unwrap_or_default()} data-testid="lesson-next">{"Next →"}</a>
                }
            </nav>
            {list}
        </section>
    }
}
