//! `GET /api/v1/events`: Server-Sent Events of signal changes and alarm transitions.
//!
//! # Signals
//!
//! One hub task drains the bus's coalesced [`petra_core::LatestFeed`] and broadcasts the ids
//! that changed, tagged with the generation of the [`Signals`] they belong to. Each stream
//! sends a snapshot of every signal on connect, then the current value of each changed signal.
//! The broadcast channel is bounded ([`BATCHES`]); a stream that falls that far behind gets a
//! fresh snapshot instead of the batches it missed (coalescing again — a slow client never
//! holds memory or slows the bus). After a reload swapped the signals, each stream sends a
//! snapshot of the new ones.
//!
//! # Alarms
//!
//! [`Api::publish_alarm`] (called by the alarm manager on every transition) serialises the
//! alarm once and broadcasts it on a second bounded channel ([`ALARM_EVENTS`]); every stream
//! sends it as `event: alarm`. On connect, after the signal snapshot, a stream sends every
//! alarm once (the source's `list()`). A stream that falls more than [`ALARM_EVENTS`] alarm
//! events behind skips the ones it missed and sends the whole `list()` instead, as a burst of
//! `event: alarm` — the latest state of every alarm, never a queue that grows. A signal
//! snapshot (lag, reload) keeps the alarm events already queued.

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
/// Alarm events kept for slow streams before they get the whole alarm list instead.
pub(crate) const ALARM_EVENTS: usize = 256;
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

/// One alarm transition: the JSON of its `AlarmView`, serialised once for every stream.
pub(crate) type AlarmEvent = Arc<str>;

/// The broadcast side of alarm events, created with the state (see `Api::alarm_events`).
pub(crate) fn alarm_channel() -> broadcast::Sender<AlarmEvent> {
    broadcast::Sender::new(ALARM_EVENTS)
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
    // Subscribed before the snapshots are taken: nothing that happens after them is missed
    // (a change between the two is sent twice, the later copy being the current state).
    let rx = api.events.subscribe();
    let alarm_rx = api.alarm_events.subscribe();
    let current = api.current();
    let mut pending = VecDeque::new();
    snapshot(&current, &mut pending);
    all_alarms(&api, &mut pending);
    let state = StreamState {
        api: api.clone(),
        rx,
        alarm_rx,
        current,
        pending,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok(ev.into_event()), st));
            }
            let batch = tokio::select! {
                _ = st.api.shutdown.cancelled() => return None,
                b = st.rx.recv() => b,
                a = st.alarm_rx.recv() => {
                    match a {
                        Ok(json) => st.pending.push_back(Pending::Alarm(json)),
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // Skip what was missed (the list below is newer), then the list.
                            st.alarm_rx = st.alarm_rx.resubscribe();
                            st.pending.retain(|p| matches!(p, Pending::Signal(_)));
                            all_alarms(&st.api, &mut st.pending);
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                    continue;
                }
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
    alarm_rx: broadcast::Receiver<AlarmEvent>,
    current: Arc<Signals>,
    pending: VecDeque<Pending>,
}

/// An event waiting to be sent.
enum Pending {
    Signal(Event),
    /// The JSON of an `AlarmView`.
    Alarm(AlarmEvent),
}

impl Pending {
    fn into_event(self) -> Event {
        match self {
            Pending::Signal(ev) => ev,
            Pending::Alarm(json) => Event::default().event("alarm").data(&*json),
        }
    }
}

/// Replaces the queued signal events with every signal's current value; queued alarm events
/// stay (they are not covered by a signal snapshot).
fn snapshot(signals: &Signals, out: &mut VecDeque<Pending>) {
    out.retain(|p| matches!(p, Pending::Alarm(_)));
    for i in 0..signals.meta.len() {
        if let Some(ev) = signal_event(signals, SignalId::from_index(i)) {
            out.push_back(ev);
        }
    }
}

/// Queues every alarm of the source (none without one).
fn all_alarms(api: &Api, out: &mut VecDeque<Pending>) {
    let Some(source) = api.alarm_source() else {
        return;
    };
    for view in source.list() {
        match serde_json::to_string(&view) {
            Ok(json) => out.push_back(Pending::Alarm(Arc::from(json))),
            Err(e) => tracing::error!(error = %e, alarm = %view.name, "cannot serialise an alarm"),
        }
    }
}

fn signal_event(signals: &Signals, id: SignalId) -> Option<Pending> {
    let data = signal_json(signals, id)?;
    Some(Pending::Signal(
        Event::default().event("signal").data(data.to_string()),
    ))
}
