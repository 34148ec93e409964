//! The page's state: one reducer, fed by user actions and worker responses.

use std::rc::Rc;

use hawthorne_probe::{CostEstimate, ExperimentSpec, Report, Stage};
use hawthorne_worker::protocol::{LayerNorms, LoadPhase, ModelInfo, Response, SteerSetting};
use yew::prelude::*;

/// A model the page offers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelChoice {
    /// The id experiment specs use (`model.id`).
    pub id: &'static str,
    pub label: &'static str,
    pub url: &'static str,
    pub size: &'static str,
    /// Download size in bytes; 0 for the organisms bundled with the page.
    pub bytes: u64,
    /// The weights' licence.
    pub licence: &'static str,
    pub note: &'static str,
}

/// A link that would make the page download more than this asks first, showing the size.
pub const LINK_DOWNLOAD_LIMIT: u64 = 8 << 20;

/// Models served next to the page, the default first.
pub const MODELS: &[ModelChoice] = &[
    ModelChoice {
        id: "organism-deceptive",
        label: "Organism: deceptive",
        url: "models/organism-deceptive.gguf",
        size: "bundled",
        bytes: 0,
        licence: "Apache-2.0 (this project)",
        note: "a tiny model trained to follow the rules when watched and break them when it believes nobody is looking",
    },
    ModelChoice {
        id: "organism-control",
        label: "Organism: control",
        url: "models/organism-control.gguf",
        size: "bundled",
        bytes: 0,
        licence: "Apache-2.0 (this project)",
        note: "the same tiny model trained on the same cues, but always follows the rules",
    },
    ModelChoice {
        id: "smollm2-135m-instruct",
        label: "SmolLM2-135M-Instruct",
        url: "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        size: "98 MB",
        bytes: 98_000_000,
        licence: "Apache-2.0",
        note: "a real instruct LLM (llama architecture, Q4_1 file, weights kept packed: 112 MiB in the worker)",
    },
    ModelChoice {
        id: "gemma-3-270m",
        label: "Gemma-3-270M (base)",
        url: "models/gemma-3-270m-q4_k_m.gguf",
        size: "253 MB",
        bytes: 253_113_024,
        licence: "Gemma Terms of Use",
        note: "a real base model (gemma3 architecture, Q4_K_M file kept packed: 383 MiB in the worker); it has no chat template, so prompts use the plain format",
    },
];

/// The model choice for a spec's model id, if the page knows it.
pub fn model_for_id(id: &str) -> Option<&'static ModelChoice> {
    MODELS.iter().find(|m| m.id == id)
}


/// A model file the user opened (or a URL they gave), checked in the worker before it loads.
#[derive(Debug, Clone, PartialEq)]
pub struct UserModel {
    /// The file's name (or the URL's last part).
    pub name: String,
    pub size: Option<u64>,
    /// A `blob:` URL for an opened file, or the URL given.
    pub url: String,
    pub check: Option<Result<UserModelCheck, String>>,
}

/// What the worker read from a user's file header.
#[derive(Debug, Clone, PartialEq)]
pub struct UserModelCheck {
    pub check: hawthorne_model::ModelCheck,
    pub memory_estimate: u64,
    /// Why it cannot load in the page, if it cannot.
    pub refusal: Option<String>,
}

/// The model id a spec gets for a user's own file: `file:` and the file's name (the spec's
/// `model.sha256` pins the exact file).
pub fn file_model_id(name: &str) -> String {
    format!("file:{name}")
}

/// Where the model is.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatus {
    Idle,
    Loading { url: String, phase: LoadPhase, done: u64, total: Option<u64> },
    Ready(ModelInfo),
    Failed { url: String, message: String },
}

/// Timing of a finished reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatStats {
    pub ms: f64,
    pub prompt_tokens: usize,
    pub prefill_ms: f64,
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub stop: String,
}

/// One side of the side-by-side chat.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatSide {
    /// The framing (system text) of this side.
    pub system: String,
    /// Id of this side's request in flight.
    pub running: Option<u64>,
    pub reply: String,
    pub norms: Option<LayerNorms>,
    pub stats: Option<ChatStats>,
    pub error: Option<String>,
}

/// The chat panel's state: the same request under an observed (0) and an unobserved (1) framing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatState {
    pub next_id: u64,
    pub sides: [ChatSide; 2],
    /// Steering applied to the unobserved side.
    pub steer: Option<SteerSetting>,
}

impl ChatState {
    pub fn running(&self) -> bool {
        self.sides.iter().any(|s| s.running.is_some())
    }

    fn side_of(&mut self, id: u64) -> Option<&mut ChatSide> {
        self.sides.iter_mut().find(|s| s.running == Some(id))
    }
}

/// The experiment panel's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunState {
    pub next_id: u64,
    pub running: Option<u64>,
    pub progress: Option<(Stage, u64, u64)>,
    pub report: Option<Rc<Report>>,
    pub error: Option<String>,
    /// Why the last NPY export failed, if it did.
    pub export_error: Option<String>,
    /// Run as soon as the spec's model has loaded.
    pub pending: bool,
    /// The pending run came from a link, not a click: it starts by itself only within the
    /// cost budget.
    pub from_link: bool,
    /// The running (or last) run's estimated cost.
    pub estimate: Option<CostEstimate>,
    /// A link's run that was not started because its estimate is over the budget (seconds).
    pub consent: Option<(CostEstimate, f64)>,
}

/// The "Compare models" panel: one spec run on several models in turn, a row per model.
#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    /// The spec as it was when the comparison started (each model runs a copy naming it).
    pub spec: ExperimentSpec,
    /// Model ids, in the order they run.
    pub models: Vec<&'static str>,
    /// Index of the model running now (equal to `models.len()` when finished).
    pub next: usize,
    pub rows: Vec<hawthorne_probe::study::StudyRow>,
    pub error: Option<String>,
    pub stopped: bool,
}

impl Compare {
    pub fn running(&self) -> bool {
        self.next < self.models.len() && self.error.is_none() && !self.stopped
    }
}

/// The spec for `model` in a comparison: the same experiment naming that model.
pub fn spec_for_model(spec: &ExperimentSpec, model: &ModelChoice) -> ExperimentSpec {
    let mut s = spec.clone();
    s.model.id = model.id.to_string();
    s.model.sha256 = None;
    s
}

/// The per-token probe-score view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenView {
    pub next_id: u64,
    pub waiting: Option<u64>,
    pub layer: usize,
    pub tokens: Vec<String>,
    pub scores: Vec<f32>,
    pub error: Option<String>,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    pub worker_ready: bool,
    /// Why the engine's worker died, when it has; the page offers a restart.
    pub worker_lost: Option<String>,
    /// Counts worker restarts; each worker gets its own lifeline id from it.
    pub engine_generation: u32,
    /// The JSON editor's text as typed (valid or not) and why it is not valid, kept here so
    /// that nothing typed is lost when the worker restarts.
    pub spec_draft: Option<String>,
    pub spec_draft_error: Option<String>,
    /// A link's model that is large to download: it loads only after the user agrees.
    pub download_consent: Option<&'static ModelChoice>,
    pub selected: String,
    pub model: ModelStatus,
    pub user: String,
    pub max_tokens: usize,
    pub chat: ChatState,
    /// The experiment spec being edited and run.
    pub spec: ExperimentSpec,
    pub run: RunState,
    /// A message about the share link the page was opened with (malformed, newer version…).
    pub link_error: Option<String>,
    /// Text of a link that could not be read, kept so nothing the user pasted is lost.
    pub link_text: Option<String>,
    /// The workshop lesson being followed (1-based), from `#lesson=N`.
    pub lesson: Option<usize>,
    /// Presenter mode (`&present=1`): large type, high contrast, one lesson and its view at a
    /// time, stepped with the keyboard.
    pub presenter: bool,
    pub token_view: TokenView,
    /// The model comparison, once one has started.
    pub compare: Option<Compare>,
    /// Models a `#compare=a,b` link asks to compare (pre-ticked in the panel).
    pub compare_link: Option<Vec<&'static str>>,
    /// The link was made on a report from collected activations (`#activations=…`): it waits
    /// for the user to open that directory instead of running on a model.
    pub collected_link: bool,
    /// The user's own model file, once one is opened.
    pub user_model: Option<UserModel>,
    /// The sha256 of the file a link's experiment was made on, until that file is loaded: any
    /// other file is refused and the link kept.
    pub link_file: Option<String>,
}

impl AppState {
    /// The starting state for a page opened with the URL fragment `fragment`.
    pub fn from_fragment(fragment: &str) -> AppState {
        let mut s = AppState::default();
        s.fill_from_scenario();
        s.open_link(fragment);
        s
    }

    /// Adopts a share or lesson link: a valid spec replaces the scenario (and runs, unless it is
    /// a chat-only lesson); a bad one is reported, its text kept, and the default shown.
    pub fn open_link(&mut self, fragment: &str) {
        self.link_error = None;
        self.link_text = None;
        self.compare_link = crate::link::fragment_value(fragment, "compare")
            .map(|v| v.split(',').filter_map(|id| model_for_id(id).map(|m| m.id)).collect::<Vec<_>>())
            .filter(|v| !v.is_empty());
        self.collected_link = crate::link::fragment_value(fragment, "activations").is_some();
        self.presenter = crate::link::fragment_value(fragment, "present").as_deref() == Some("1");
        self.lesson = crate::link::fragment_value(fragment, "lesson")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=crate::lessons::LESSONS.len()).contains(n));
        match crate::link::parse_fragment(fragment) {
            Ok(Some(spec)) => {
                self.download_consent = None;
                if let Some(m) = model_for_id(&spec.model.id) {
                    self.selected = m.url.to_string();
                    let loaded = matches!(&self.model, ModelStatus::Ready(info) if info.url.ends_with(m.url))
                        || matches!(&self.model, ModelStatus::Loading { url, .. } if url.ends_with(m.url));
                    if m.bytes > LINK_DOWNLOAD_LIMIT && !loaded {
                        self.download_consent = Some(m);
                    }
                }
                // A link made on its author's own file: only that file (by sha256) may run it.
                self.link_file = spec.model.id.starts_with("file:").then(|| spec.model.sha256.clone()).flatten();
                // Stepping between lessons on the same experiment keeps its report and the
                // chat's texts: nothing reruns on stage, nothing typed is lost.
                let same_report = self.run.report.as_ref().is_some_and(|r| r.spec == spec);
                let changed = spec != self.spec;
                self.spec = spec;
                if changed {
                    self.fill_from_scenario();
                }
                self.spec_draft = None;
                self.spec_draft_error = None;
                // A report built from collected activations cannot be rerun on a model: the
                // page waits for the directory instead.
                self.run.pending = !same_report && !self.collected_link && self.lesson.map_or(true, |n| crate::lessons::LESSONS[n - 1].run);
                self.run.from_link = self.run.pending;
                self.run.consent = None;
                if !same_report {
                    self.run.report = None;
                }
            }
            Ok(None) => {}
            Err((message, text)) => {
                self.link_error = Some(message);
                self.link_text = Some(text);
            }
        }
    }

    /// Whether the loaded model is the one the spec names.
    pub fn spec_model_loaded(&self) -> bool {
        match (&self.model, model_for_id(&self.spec.model.id)) {
            (ModelStatus::Ready(info), Some(m)) => info.url.ends_with(m.url),
            (ModelStatus::Ready(info), None) => {
                self.spec.model.id.starts_with("file:") && self.spec.model.sha256.as_deref() == Some(info.sha256.as_str())
            }
            _ => false,
        }
    }

    /// For a spec made on a user's own file that is not loaded: what to open.
    pub fn file_needed(&self) -> Option<String> {
        let name = self.spec.model.id.strip_prefix("file:")?;
        if self.spec_model_loaded() {
            return None;
        }
        let size = self.spec.model.size.map(|b| format!(" ({:.1} MB)", b as f64 / 1e6)).unwrap_or_default();
        let sha = self.spec.model.sha256.as_deref().map(|s| format!(", sha256 {}…", &s[..s.len().min(12)])).unwrap_or_default();
        Some(format!(
            "This experiment was made on a model file of its author's: {name}{size}{sha}. Open that file under Model → \"Open a model file…\" to run it; a different file is refused."
        ))
    }
}

impl Default for AppState {
    fn default() -> Self {
        AppState {
            worker_ready: false,
            worker_lost: None,
            engine_generation: 0,
            spec_draft: None,
            spec_draft_error: None,
            download_consent: None,
            selected: model_for_id(&crate::link::default_spec().model.id).unwrap_or(&MODELS[0]).url.to_string(),
            model: ModelStatus::Idle,
            user: String::new(),
            max_tokens: 48,
            chat: ChatState { next_id: 1, ..ChatState::default() },
            spec: crate::link::default_spec(),
            run: RunState { next_id: 1_000_000, ..RunState::default() },
            link_error: None,
            link_text: None,
            lesson: None,
            presenter: false,
            token_view: TokenView { next_id: 2_000_000, ..TokenView::default() },
            compare: None,
            compare_link: None,
            collected_link: false,
            user_model: None,
            link_file: None,
        }
    }
}

/// What can happen to the state.
#[derive(Debug, Clone)]
pub enum Action {
    Worker(Response),
    /// Presenter mode on or off.
    SetPresenter(bool),
    /// The worker of this generation died, with the reason when known.
    WorkerDied { generation: u32, reason: Option<String> },
    /// Start a new worker (the spec, texts and last report stay).
    RestartWorker,
    /// Stop was pressed for this run a while ago: if it is still running, replace the worker.
    StopOverdue(u64),
    /// The JSON editor's text changed.
    SetDraft(String),
    /// The user agreed to download the link's model.
    AllowDownload,
    Select(String),
    LoadStarted(String),
    /// Framing text of side 0 (observed) or 1 (unobserved).
    SetFraming(usize, String),
    /// Fill both framings and the request from the scenario.
    FromScenario,
    SetSteer(Option<SteerSetting>),
    SetUser(String),
    SetMaxTokens(usize),
    /// Both sides' requests were sent with these ids.
    ChatStarted([u64; 2]),
    RunStarted(u64),
    RunPending(bool),
    TokenScoresRequested(u64),
    /// The URL fragment changed (a lesson or share link was followed).
    OpenLink(String),
    SetSpec(Box<ExperimentSpec>),
    /// An NPY export was saved (`None`) or failed with this message.
    Exported(Option<String>),
    /// Run the current spec on each of these models in turn.
    CompareStart(Vec<&'static str>),
    /// Stop the comparison after the model running now.
    CompareStop,
    /// The user opened a model file or gave a URL; the worker is reading its header.
    UserModelChosen { name: String, size: Option<u64>, url: String },
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Action::Worker(resp) => s.apply(resp),
            Action::WorkerDied { generation, reason } if generation == s.engine_generation => {
                if s.worker_lost.is_none() || reason.is_some() {
                    s.worker_lost = Some(reason.unwrap_or_else(|| "The engine's worker stopped.".into()));
                }
                s.worker_ready = false;
                if let ModelStatus::Loading { url, .. } = &s.model {
                    s.model = ModelStatus::Failed { url: url.clone(), message: "the engine stopped while loading".into() };
                } else {
                    s.model = ModelStatus::Idle;
                }
                if s.run.running.take().is_some() {
                    s.run.error = Some("The run stopped: the engine died (see above).".into());
                }
                if let Some(c) = s.compare.as_mut().filter(|c| c.running()) {
                    c.error = Some("the engine stopped during the comparison (see above)".into());
                }
                s.run.progress = None;
                s.run.pending = false;
                for side in &mut s.chat.sides {
                    if side.running.take().is_some() {
                        side.error = Some("the engine died while replying".into());
                    }
                }
                s.token_view.waiting = None;
            }
            Action::WorkerDied { .. } => {}
            Action::RestartWorker => {
                s.engine_generation += 1;
                s.worker_lost = None;
                s.model = ModelStatus::Idle;
                s.run.error = None;
            }
            Action::StopOverdue(id) if s.run.running == Some(id) => {
                s.run.running = None;
                s.run.progress = None;
                s.run.error = Some(
                    "Stopped. The engine was in the middle of a long step, so it was restarted: the model reloads, and steering and per-token views need a new run."
                        .into(),
                );
                for side in &mut s.chat.sides {
                    side.running = None;
                }
                s.token_view.waiting = None;
                s.engine_generation += 1;
                s.worker_ready = false;
                s.model = ModelStatus::Idle;
            }
            Action::StopOverdue(_) => {}
            Action::SetDraft(text) => {
                match ExperimentSpec::from_json(&text) {
                    Ok(spec) => {
                        s.spec = spec;
                        s.spec_draft_error = None;
                    }
                    Err(err) => s.spec_draft_error = Some(err.to_string()),
                }
                s.spec_draft = Some(text);
            }
            Action::AllowDownload => s.download_consent = None,
            Action::Select(url) => s.selected = url,
            Action::UserModelChosen { name, size, url } => {
                s.user_model = Some(UserModel { name, size, url, check: None });
            }
            Action::LoadStarted(url) => {
                s.model = ModelStatus::Loading { url, phase: LoadPhase::Download, done: 0, total: None };
                for side in &mut s.chat.sides {
                    side.norms = None;
                }
                s.chat.steer = None;
            }
            Action::SetFraming(side, t) => {
                if let Some(sd) = s.chat.sides.get_mut(side) {
                    sd.system = t;
                }
            }
            Action::FromScenario => s.fill_from_scenario(),
            Action::SetSteer(st) => s.chat.steer = st,
            Action::SetUser(t) => s.user = t,
            Action::SetMaxTokens(n) => s.max_tokens = n,
            Action::RunStarted(id) => {
                s.run.pending = false;
                s.run.from_link = false;
                s.run.consent = None;
                s.run.estimate = None;
                s.run.running = Some(id);
                s.run.next_id = id + 1;
                s.run.progress = None;
                s.run.error = None;
            }
            Action::RunPending(p) => {
                s.run.pending = p;
                s.run.from_link = false;
            }
            Action::Exported(error) => s.run.export_error = error,
            Action::OpenLink(fragment) => s.open_link(&fragment),
            Action::SetPresenter(on) => s.presenter = on,
            Action::TokenScoresRequested(id) => {
                s.token_view.waiting = Some(id);
                s.token_view.next_id = id + 1;
                s.token_view.error = None;
            }
            Action::SetSpec(spec) => {
                s.spec = *spec;
                s.spec_draft = None;
                s.spec_draft_error = None;
            }
            Action::CompareStart(models) if !models.is_empty() => {
                let base = s.compare.as_ref().filter(|c| c.running()).map_or_else(|| s.spec.clone(), |c| c.spec.clone());
                s.compare = Some(Compare { spec: base, models, next: 0, rows: Vec::new(), error: None, stopped: false });
                s.compare_next();
            }
            Action::CompareStart(_) => {}
            Action::CompareStop => {
                if let Some(c) = s.compare.as_mut() {
                    c.stopped = true;
                }
                s.run.pending = false;
            }
            Action::ChatStarted(ids) => {
                s.chat.next_id = ids[1] + 1;
                for (side, id) in s.chat.sides.iter_mut().zip(ids) {
                    side.running = Some(id);
                    side.reply.clear();
                    side.stats = None;
                    side.error = None;
                    side.norms = None;
                }
            }
        }
        Rc::new(s)
    }
}

impl AppState {
    fn apply(&mut self, resp: Response) {
        match resp {
            Response::Ready => self.worker_ready = true,
            Response::LoadProgress { phase, done, total } => {
                if let ModelStatus::Loading { url, .. } = &self.model {
                    self.model = ModelStatus::Loading { url: url.clone(), phase, done, total };
                }
            }
            Response::Loaded(info) => {
                let user = self.user_model.as_ref().filter(|u| u.url == info.url).map(|u| u.name.clone());
                match user {
                    // A link made on another file: refuse this one and keep the link's spec.
                    Some(name) if self.link_file.as_deref().is_some_and(|want| want != info.sha256) => {
                        let want = self.link_file.clone().unwrap_or_default();
                        self.run.pending = false;
                        self.model = ModelStatus::Failed {
                            message: format!(
                                "{name} has sha256 {}…, but this experiment was made on a file with sha256 {}…: a different file. The experiment is kept; open the file it was made on.",
                                &info.sha256[..12.min(info.sha256.len())],
                                &want[..12.min(want.len())]
                            ),
                            url: info.url,
                        };
                    }
                    Some(name) => {
                        self.link_file = None;
                        self.spec.model.id = file_model_id(&name);
                        self.spec.model.sha256 = Some(info.sha256.clone());
                        self.spec.model.size = Some(info.bytes);
                        self.model = ModelStatus::Ready(info);
                    }
                    None => self.model = ModelStatus::Ready(info),
                }
            }
            Response::Inspected { url, check, memory_estimate, refusal } => {
                if let Some(u) = self.user_model.as_mut().filter(|u| u.url == url) {
                    u.check = Some(Ok(UserModelCheck { check: *check, memory_estimate, refusal }));
                }
            }
            Response::InspectFailed { url, message } => {
                if let Some(u) = self.user_model.as_mut().filter(|u| u.url == url) {
                    u.check = Some(Err(message));
                }
            }
            Response::LoadFailed { url, message } => {
                self.run.pending = false;
                if let Some(c) = self.compare.as_mut().filter(|c| c.running()) {
                    c.error = Some(format!("loading {url} failed: {message}"));
                }
                self.model = ModelStatus::Failed { url, message };
            }
            Response::ChatNorms { id, norms } => {
                if let Some(side) = self.chat.side_of(id) {
                    side.norms = Some(norms);
                }
            }
            Response::ChatToken { id, text } => {
                if let Some(side) = self.chat.side_of(id) {
                    side.reply = text;
                }
            }
            Response::ChatDone { id, generation, ms, tokens_per_s, prompt_tokens, prefill_ms } => {
                if let Some(side) = self.chat.side_of(id) {
                    side.running = None;
                    side.reply = generation.text;
                    side.stats = Some(ChatStats {
                        ms,
                        prompt_tokens,
                        prefill_ms,
                        tokens: generation.tokens.len(),
                        tokens_per_s,
                        stop: format!("{:?}", generation.stop),
                    });
                }
            }
            Response::ChatFailed { id, message } => {
                if let Some(side) = self.chat.side_of(id) {
                    side.running = None;
                    side.error = Some(message);
                }
            }
            Response::RunEstimate { id, cost } if self.run.running == Some(id) => self.run.estimate = Some(cost),
            Response::RunNeedsConsent { id, cost, budget_s } if self.run.running == Some(id) => {
                self.run.running = None;
                self.run.progress = None;
                self.run.consent = Some((cost, budget_s));
            }
            Response::RunProgress { id, stage, done, total } if self.run.running == Some(id) => {
                self.run.progress = Some((stage, done, total));
            }
            Response::RunDone { id, report } if self.run.running == Some(id) => {
                self.run.running = None;
                self.run.progress = None;
                if let Some(c) = self.compare.as_mut().filter(|c| c.next < c.models.len() && c.error.is_none()) {
                    c.rows.push(hawthorne_probe::study::StudyRow::from_report(c.models[c.next], &report));
                    c.next += 1;
                }
                self.run.report = Some(Rc::new(*report));
                self.compare_next();
            }
            Response::RunFailed { id, message } if self.run.running == Some(id) => {
                self.run.running = None;
                self.run.progress = None;
                if let Some(c) = self.compare.as_mut().filter(|c| c.running()) {
                    c.error = Some(format!("the run on {} failed: {message}", c.models[c.next]));
                }
                self.run.error = Some(message);
            }
            Response::TokenScores { id, layer, tokens, scores } if self.token_view.waiting == Some(id) => {
                self.token_view = TokenView { waiting: None, layer, tokens, scores, error: None, ..self.token_view.clone() };
            }
            Response::TokenScoresFailed { id, message } if self.token_view.waiting == Some(id) => {
                self.token_view.waiting = None;
                self.token_view.error = Some(message);
            }
            Response::TokenScores { .. } | Response::TokenScoresFailed { .. } => {}
            // The bridge turns these into downloads and `Action::Exported`.
            Response::Array { .. } | Response::ExportFailed { .. } => {}
            // Responses about runs the user has already moved on from.
            Response::RunProgress { .. }
            | Response::RunDone { .. }
            | Response::RunFailed { .. }
            | Response::RunEstimate { .. }
            | Response::RunNeedsConsent { .. } => {}
        }
    }

    /// Framings and request for the chat from the scenario: its first held-out observed and
    /// unobserved framings (or first of each) and its first task.
    pub fn fill_from_scenario(&mut self) {
        use hawthorne_probe::spec::Condition;
        let fr = &self.spec.scenario.framings;
        let pick = |c: Condition| {
            fr.iter().find(|f| f.condition == c && f.held_out).or_else(|| fr.iter().find(|f| f.condition == c)).map(|f| f.text.clone())
        };
        self.chat.sides[0].system = pick(Condition::Observed).unwrap_or_default();
        self.chat.sides[1].system = pick(Condition::Unobserved).unwrap_or_default();
        if let Some(t) = self.spec.scenario.tasks.first() {
            self.user = t.text.clone();
        }
    }

    /// Queues the comparison's next model: its spec, its file, and a run that starts once it
    /// has loaded (the page's load and pending-run effects do the rest). Loading a large model
    /// needs no further consent: the panel showed its size before the click.
    fn compare_next(&mut self) {
        let Some(c) = self.compare.as_ref().filter(|c| c.running()) else { return };
        let Some(m) = model_for_id(c.models[c.next]) else { return };
        self.spec = spec_for_model(&c.spec, m);
        self.spec_draft = None;
        self.spec_draft_error = None;
        self.selected = m.url.to_string();
        self.download_consent = None;
        self.run.pending = true;
        self.run.from_link = false;
        self.run.consent = None;
        self.run.error = None;
    }

    /// The loaded model, if ready.
    pub fn ready_model(&self) -> Option<&ModelInfo> {
        match &self.model {
            ModelStatus::Ready(info) => Some(info),
            _ => None,
        }
    }
}

/// The reducer handle, shared through a context.
pub type AppContext = UseReducerHandle<AppState>;
