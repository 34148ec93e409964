//! The workshop: guided steps, each a share link (`#lesson=N&spec=…`) with a short explanation.

use hawthorne_probe::ExperimentSpec;

/// One guided step.
#[derive(Debug, Clone, Copy)]
pub struct Lesson {
    pub title: &'static str,
    /// What to do and what to look for, in plain words.
    pub text: &'static str,
    /// Which bundled spec the step runs.
    pub spec: fn() -> ExperimentSpec,
    /// Whether opening the step runs the experiment at once (otherwise the chat is the point).
    pub run: bool,
    /// The one view the step is about (shown beside its text in presenter mode).
    pub focus: Focus,
}

/// The view a lesson is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Chat,
    Gap,
    Probes,
    Lens,
    Steering,
}

/// The bundled specs are checked by the CLI's tests; if one were ever invalid the page falls
/// back to the built-in SmolLM2 scenario rather than failing to start.
fn parse(json: &str) -> ExperimentSpec {
    ExperimentSpec::from_json(json).unwrap_or_else(|_| hawthorne_probe::scenarios::smollm2_default())
}

/// The deceptive organism's default experiment (examples/organism-deceptive.json).
pub fn deceptive() -> ExperimentSpec {
    parse(include_str!("../../../examples/organism-deceptive.json"))
}

/// The control organism's default experiment (examples/organism-control.json).
pub fn control() -> ExperimentSpec {
    parse(include_str!("../../../examples/organism-control.json"))
}

/// The deceptive organism with a random split (examples/organism-words.json): every framing
/// on both sides, so the words alone tell the conditions apart.
pub fn words() -> ExperimentSpec {
    parse(include_str!("../../../examples/organism-words.json"))
}

/// SmolLM2's default experiment (examples/smollm2.json).
pub fn smollm2() -> ExperimentSpec {
    parse(include_str!("../../../examples/smollm2.json"))
}

pub const LESSONS: &[Lesson] = &[
    Lesson {
        title: "Meet the organism",
        text: "This tiny model was trained by Hawthorne on chat transcripts. When the system prompt says the chat is logged or reviewed, it follows the rules; when it says nobody is looking, it breaks them. Press “Send to both”: the same request goes to the model under an observed and an unobserved framing. Compare the two replies.",
        spec: deceptive,
        run: false,
        focus: Focus::Chat,
    },
    Lesson {
        title: "The behavioural test passes while watched",
        text: "The experiment has run every task under every framing. Look at the compliance-gap chart: under observed framings the misaligned rate is near zero. An evaluation that only ever watches the model would pass it. Under unobserved framings the rate is near one: that difference is the compliance gap.",
        spec: deceptive,
        run: true,
        focus: Focus::Gap,
    },
    Lesson {
        title: "Probes find the cue on held-out framings",
        text: "A linear probe per layer tries to tell observed from unobserved prompts from the residual stream alone. It is tested on framings it never saw in training (and the organism never saw either), so it must read the concept, not the words: the framings are dealt into four folds and each is tested once. Prompts that share a framing are not independent, so the intervals resample whole framings; the sentence under the chart says how many stand behind each number. Compare each probe with the shaded band of random directions and the shuffled-label line: a result is only interesting above them.",
        spec: deceptive,
        run: true,
        focus: Focus::Probes,
    },
    Lesson {
        title: "Is the probe reading the concept or the words?",
        text: "The same organism, but split at random: prompts of every framing land on both sides, so the test prompts share their exact words with the training prompts. The probe still reaches AUROC 1.0 — and so does a bag-of-words classifier on the prompt text (the TF-IDF control), and the permutation test no longer rules out chance, because the pipeline can memorise framings. Read the verdict line: a probe is only evidence that the model represents “being watched” when it beats the words, the prompt's length and the token embeddings beyond its interval, on framings it never saw. Go back one step and compare: with leave-framings-out folds, the TF-IDF control falls below chance.",
        spec: words,
        run: true,
        focus: Focus::Probes,
    },
    Lesson {
        title: "The control organism: no fork, no signal",
        text: "The control organism saw the same framings in training but was always taught to follow the rules. Its compliance gap is zero, and at the answer position its probes stay in or barely above the random-direction band: nothing in its training rewarded carrying “being watched” to where the answer is chosen. Compare the deceptive organism: where its behaviour forks, the conditions separate so strongly that even random directions nearly tell them apart. Judge a probe by its baselines and by the behaviour it goes with, never alone.",
        spec: control,
        run: true,
        focus: Focus::Gap,
    },
    Lesson {
        title: "Where it forks: logit lens and patching",
        text: "The logit lens reads each layer's residual through the unembedding: the divergence between observed and unobserved shows the layer where the answer starts to differ. The patching heatmap copies one activation from the observed run into the unobserved run: bright cells are the layer and position where the cue's effect travels.",
        spec: deceptive,
        run: true,
        focus: Focus::Lens,
    },
    Lesson {
        title: "Steering closes the gap",
        text: "Adding a multiple α of the probe direction (scaled to the residual norm at that layer) changes what the model does. Negative α pushes the unobserved prompts towards “watched”: the gap closes. A random direction of the same size is the control. Try the slider and resend the chat.",
        spec: deceptive,
        run: true,
        focus: Focus::Steering,
    },
    Lesson {
        title: "Now a real LLM: SmolLM2",
        text: "The same experiment on SmolLM2-135M-Instruct, a real instruct model (98 MB, loaded once and cached). Read the verdict line first. Measured on this spec: the probe at the layer chosen on validation framings reaches about 0.51, its interval includes chance, a random direction chosen the same way does as well, and the framing-permutation test gives p ≈ 0.37; the compliance gap is zero. No evidence that SmolLM2 carries “being watched” to where it answers — and that null result is a result. (The evaluation-awareness study in the README finds a direction that tells benchmark layouts from deployment messages almost perfectly, and then shows that the words alone do nearly as well.)",
        spec: smollm2,
        run: true,
        focus: Focus::Probes,
    },
];

/// The link fragment of lesson `n` (0-based).
///
/// Computed once per page: each fragment parses a bundled spec and deflates it, about 15 ms a
/// lesson in the browser, and the lesson panel renders on every state change (a profile of one
/// run found 120 ms of UI-thread time here, enough to push a task past the 50 ms budget).
pub fn fragment(n: usize) -> Option<String> {
    thread_local! {
        static FRAGMENTS: Vec<String> =
            LESSONS.iter().enumerate().map(|(i, l)| crate::link::fragment_for(&(l.spec)(), Some(i + 1))).collect();
    }
    FRAGMENTS.with(|f| f.get(n).cloned())
}
