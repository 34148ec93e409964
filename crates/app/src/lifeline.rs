//! Notices when the engine's worker dies, whatever the cause, so the page can say so and offer
//! a restart instead of showing a run in progress forever.
//!
//! A dead worker sends nothing: a wasm trap or an out-of-memory abort inside it fires no event
//! that yew-agent's bridge passes on, and a closed worker is silent. `web/engine.js` therefore
//! holds a Web Lock named after the worker for as long as it lives, and posts why it died on a
//! BroadcastChannel of the same name before it closes itself. Here the page waits for that
//! lock (granted only once the worker is gone) and listens on that channel.

use js_sys::{Function, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// The lock and channel name for the worker with this lifeline id.
fn name(id: &str) -> String {
    format!("hawthorne-engine-{id}")
}

/// A readable sentence from the worker's last words (`None`: it stopped without any).
pub fn death_sentence(message: &JsValue) -> Option<String> {
    let get = |k: &str| Reflect::get(message, &k.into()).ok();
    let failed = get("failed_allocation").and_then(|v| v.as_f64()).unwrap_or(0.0);
    if failed > 0.0 {
        return Some(format!(
            "The engine ran out of memory: an allocation of {:.1} MB failed (an engine in a browser tab can address at most 4 GiB).",
            failed / (1 << 20) as f64
        ));
    }
    if let Some(panic) = get("panic").and_then(|v| v.as_string()) {
        if panic.contains("capacity overflow") {
            return Some(
                "The engine ran out of memory: it needed a single block of more than 2 GiB, more than an engine in a browser tab can allocate.".into(),
            );
        }
        return Some(format!("The engine crashed: {panic}."));
    }
    get("error").and_then(|v| v.as_string()).map(|e| format!("The engine stopped with an error: {e}."))
}

/// Watches the worker started with lifeline `id`; `on_death` gets the reason when it is known
/// (it may be called twice: once with the reason, once when the lock frees). Dropping the
/// watch stops listening on the channel.
pub struct Watch {
    channel: Option<web_sys::BroadcastChannel>,
    _onmessage: Option<Closure<dyn FnMut(web_sys::MessageEvent)>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(c) = &self.channel {
            c.set_onmessage(None);
            c.close();
        }
    }
}

/// Starts watching. Browsers without BroadcastChannel or Web Locks get no watch (the page
/// then cannot tell a dead worker from a busy one, as before).
pub fn watch(id: &str, on_death: impl Fn(Option<String>) + 'static) -> Watch {
    let lock_name = name(id);
    let Ok(channel) = web_sys::BroadcastChannel::new(&lock_name) else {
        return Watch { channel: None, _onmessage: None };
    };
    let on_death = std::rc::Rc::new(on_death);
    let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
        let data = e.data();
        match Reflect::get(&data, &"type".into()).ok().and_then(|t| t.as_string()).as_deref() {
            Some("alive") => request_lock(&lock_name, on_death.clone()),
            Some("died") => on_death(death_sentence(&data).or_else(|| Some("The engine stopped.".into()))),
            _ => {}
        }
    });
    channel.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    Watch { channel: Some(channel), _onmessage: Some(onmessage) }
}

/// Asks for the worker's lock; the grant means the worker is gone.
fn request_lock(lock_name: &str, on_death: std::rc::Rc<dyn Fn(Option<String>)>) {
    let navigator = gloo::utils::window().navigator();
    let Some(locks) = Reflect::get(&navigator, &"locks".into()).ok().filter(|l| !l.is_undefined()) else { return };
    let Some(request) = Reflect::get(&locks, &"request".into()).ok().and_then(|f| f.dyn_into::<Function>().ok()) else {
        return;
    };
    // Called once, when the lock is granted; returning at once releases it again.
    let granted = Closure::once_into_js(move |_lock: JsValue| on_death(None));
    let _ = request.call2(&locks, &lock_name.into(), &granted);
}
