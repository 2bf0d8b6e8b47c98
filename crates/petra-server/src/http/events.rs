//! `GET /api/v1/events`: Server-Sent Events of signal changes.
//!
//! One hub task drains the bus's coalesced [`petra_core::LatestFeed`] and broadcasts the ids
//! that changed, tagged with the generation of the [`Signals`] they belong to. Each stream
//! sends a snapshot of every signal on connect, then the current value of each changed signal.
//! The broadcast channel is bounded ([`BATCHES`]); a stream that falls that far behind gets a
//! fresh snapshot instead of the batches it missed (coalescing again — a slow client never
//! holds memory or slows the bus). After a reload swapped the signals, each stream sends a
//! snapshot of the new ones.

use super::handlers::{Caller, signal_json};
use super::{Api, Signals};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use petra_core::SignalId;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// Change batches kept for slow streams before they are told to resynchronise.
const BATCHES: usize = 64;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A batch of changed signals of one generation of [`Signals`].
#[derive(Clone)]
pub(crate) struct Batch {
    signals: Arc<Signals>,
    ids: Arc<[SignalId]>,
}

/// The broadcast side, created with the state (see `Api::events`).
pub(crate) fn channel() -> broadcast::Sender<Batch> {
    broadcast::Sender::new(BATCHES)
}

/// Drains the change feed of the current signals and broadcasts the changes, until `cancel`.
pub(crate) async fn hub(api: Arc<Api>, cancel: CancellationToken) {
    let mut swaps = api.signals.subscribe();
    let mut feed: Option<petra_core::LatestFeed> = None;
    let mut feed_bus: Option<Arc<petra_core::Bus>> = None;
    let notify = Arc::new(Notify::new());
    loop {
        let signals = swaps.borrow_and_update().clone();
        let fresh = signals.feed.lock().expect("feed lock").take();
        let same_bus = feed_bus
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(b, &signals.bus));
        // A reload that kept the bus brings no feed: the one of that bus goes on.
        if fresh.is_some() || !same_bus {
            feed = fresh;
            feed_bus = Some(signals.bus.clone());
            if let Some(feed) = &feed {
                let n = notify.clone();
                // A feed takes one waker; this one was never handed out before (taken just now).
                feed.set_waker(Arc::new(move || n.notify_one()));
                // Changes before the waker was set are not lost: drain them now.
                notify.notify_one();
            }
        }
        let mut changed = Vec::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = swaps.changed() => {
                    if r.is_err() {
                        return;
                    }
                    break;
                }
                _ = notify.notified() => {
                    let Some(feed) = &feed else { continue };
                    changed.clear();
                    if feed.drain(&mut changed) > 0 {
                        // No receiver is fine: nobody is listening.
                        let _ = api.events.send(Batch {
                            signals: signals.clone(),
                            ids: changed.as_slice().into(),
                        });
                    }
                }
            }
        }
    }
}

pub(crate) async fn events(
    State(api): State<Arc<Api>>,
    _caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = api.events.subscribe();
    let current = api.current();
    let mut pending = VecDeque::new();
    snapshot(&current, &mut pending);
    let state = StreamState {
        api: api.clone(),
        rx,
        current,
        pending,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok(ev), st));
            }
            let batch = tokio::select! {
                _ = st.api.shutdown.cancelled() => return None,
                b = st.rx.recv() => b,
            };
            match batch {
                Ok(b) => {
                    if !Arc::ptr_eq(&b.signals, &st.current) {
                        let now = st.api.current();
                        if !Arc::ptr_eq(&now, &st.current) {
                            st.current = now;
                            snapshot(&st.current, &mut st.pending);
                        }
                        // A batch of an older generation is covered by the snapshot.
                        if !Arc::ptr_eq(&b.signals, &st.current) {
                            continue;
                        }
                    }
                    for id in b.ids.iter() {
                        if let Some(ev) = signal_event(&st.current, *id) {
                            st.pending.push_back(ev);
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    st.current = st.api.current();
                    snapshot(&st.current, &mut st.pending);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}

struct StreamState {
    api: Arc<Api>,
    rx: broadcast::Receiver<Batch>,
    current: Arc<Signals>,
    pending: VecDeque<Event>,
}

fn snapshot(signals: &Signals, out: &mut VecDeque<Event>) {
    out.clear();
    for i in 0..signals.meta.len() {
        if let Some(ev) = signal_event(signals, SignalId::from_index(i)) {
            out.push_back(ev);
        }
    }
}

fn signal_event(signals: &Signals, id: SignalId) -> Option<Event> {
    let data = signal_json(signals, id)?;
    Some(Event::default().event("signal").data(data.to_string()))
}
