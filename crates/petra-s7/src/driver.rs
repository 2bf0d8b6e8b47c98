//! The S7 driver: one tokio task per PLC, polling planned reads into the bus and writing
//! changed outputs, on [`Client`] and the shared supervisor ([`petra_drivers::supervise`]).
//!
//! # How it behaves
//!
//! - **Plans for the negotiated PDU size**: the points of each poll period are planned with
//!   [`plan_reads`] once the CPU has told its PDU size, and planned again when a reconnect
//!   negotiates another size.
//! - **Failures end the session** (see [`crate::client`]): timeouts, malformed or mismatched
//!   answers, header errors, a closed connection. The supervisor reconnects at once, then with
//!   capped backoff and jitter; while the PLC cannot be reached every read point is
//!   `bad(not_connected)`.
//! - **Item errors do not**: the PLC answered, but not for that item — a DB that does not exist,
//!   an address beyond a DB's end, access denied. Only the points of that item turn bad
//!   (`config_error` for addressing and access codes, `device_error` otherwise); the others
//!   of the same request keep their good values.
//! - **A rejected merged item is split**: an "address out of range" answer for an item that
//!   merged several points (bridging a gap, or one point running past a DB's end) moves those
//!   points to a plan that never merges them ([`plan_reads_apart`]); from then on only the point
//!   that is really out of range is bad.
//! - **Pacing**: `request_delay` between any two requests, so a poll split into many requests
//!   does not reach the CPU as one burst.
//! - **Writes** go first on every pass, coalesced per point, packed several to a request by
//!   [`plan_writes`]; a BOOL is written as a single bit (the other bits of its byte are
//!   untouched). A write the PLC refuses stays pending and is retried at the pace of polling.

use crate::client::{Client, S7Error};
use crate::codec::ReturnCode;
use crate::config::{S7Config, S7Point};
use crate::planner::{PlanConfig, ReadPlan, Write, plan_reads, plan_reads_apart, plan_writes};
use crate::value;
use petra_core::{BadReason, Bus, Quality, SignalId, Timestamp, Value};
use petra_drivers::{
    Device, DriverStatus, Outputs, RequestResult, Schedule, idle, mark_bad, output_points,
    poll_groups, supervise,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Reads of some points: the plan and, per planned range, the point it reads.
#[derive(Clone, Debug)]
pub struct Reads {
    pub plan: ReadPlan,
    pub points: Vec<usize>,
}

/// What a read brought back for one point: its bytes or the PLC's return code.
pub type ItemResult = Result<Vec<u8>, ReturnCode>;

/// Plans reads of `which` (indices into `points`): merged, except those marked `apart`.
pub fn plan_points(
    points: &[S7Point],
    which: &[usize],
    apart: &[bool],
    cfg: &PlanConfig,
) -> Result<Vec<Reads>, S7Error> {
    let mut out = Vec::new();
    for alone in [false, true] {
        let sel: Vec<usize> = which
            .iter()
            .copied()
            .filter(|i| apart[*i] == alone)
            .collect();
        if sel.is_empty() {
            continue;
        }
        let ranges: Vec<_> = sel.iter().map(|i| points[*i].var.read_range()).collect();
        let plan = if alone {
            plan_reads_apart(&ranges, cfg)
        } else {
            plan_reads(&ranges, cfg)
        }
        .map_err(|e| S7Error::Mismatch(format!("cannot plan the reads: {e}")))?;
        out.push(Reads { plan, points: sel });
    }
    Ok(out)
}

/// Sends every request of `reads` (pausing `delay` between requests) and returns each point's
/// result, in `reads.points` order; counts requests in `status`.
pub async fn read_points(
    client: &mut Client,
    reads: &Reads,
    delay: Duration,
    status: Option<&DriverStatus>,
) -> Result<Vec<ItemResult>, S7Error> {
    let mut responses = Vec::with_capacity(reads.plan.requests.len());
    for (i, req) in reads.plan.requests.iter().enumerate() {
        if i > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let r = client.read(&req.specs).await;
        if let Some(st) = status {
            st.count(match &r {
                Ok(items) if items.iter().all(|i| i.code.is_success()) => RequestResult::Ok,
                Ok(_) => RequestResult::Exception,
                Err(e) => e.result(),
            });
        }
        responses.push(r?);
    }
    reads
        .plan
        .assemble(&responses)
        .map_err(|e| S7Error::Mismatch(e.to_string()))
}

/// The bus value of point `p` from its bytes.
pub fn decode(p: &S7Point, bytes: &[u8]) -> Result<Value, String> {
    let v = p.var.decode(bytes).map_err(|e| e.to_string())?;
    value::to_value(v, p.signal_type)
}

/// Why a point is bad when the PLC answered its item with `code`.
pub fn item_reason(code: ReturnCode) -> BadReason {
    match code {
        ReturnCode::ADDRESS_OUT_OF_RANGE
        | ReturnCode::OBJECT_DOES_NOT_EXIST
        | ReturnCode::TYPE_NOT_SUPPORTED
        | ReturnCode::TYPE_INCONSISTENT
        | ReturnCode::ACCESS_DENIED => BadReason::ConfigError,
        _ => BadReason::DeviceError,
    }
}

struct Group {
    points: Vec<usize>,
    reads: Vec<Reads>,
}

/// A running S7 driver.
pub struct Driver {
    cfg: S7Config,
    bus: Arc<Bus>,
    status: Arc<DriverStatus>,
    /// Output points (`mode: write|readwrite`) and, for each, its index in `cfg.points`.
    outputs: Option<(Outputs, Vec<usize>)>,
    /// For each point: its output index, if it has one.
    out_index: Vec<Option<usize>>,
    /// Points read in items of their own after the PLC rejected a merged item.
    apart: Vec<bool>,
    groups: Vec<Group>,
    schedule: Schedule,
    /// The PDU size the plans are for (0: not planned yet).
    planned_pdu: u16,
    /// Most items per read / write request: the configured `max_items`, lowered when the PLC
    /// answers fewer items than asked.
    read_cap: usize,
    write_cap: usize,
}

impl Driver {
    /// `writes` must be a change feed over [`S7Config::output_signals`]; `None` when there are
    /// none.
    pub fn new(
        cfg: S7Config,
        bus: Arc<Bus>,
        status: Arc<DriverStatus>,
        writes: Option<petra_core::LatestFeed>,
    ) -> Driver {
        let (outputs, out_index) =
            output_points(writes, cfg.points.iter().map(|p| (p.signal, p.mode)));
        let groups = poll_groups(cfg.points.iter().map(|p| p.mode.reads().then_some(p.poll)));
        let schedule = Schedule::new(groups.iter().map(|(p, _)| *p));
        Driver {
            apart: vec![false; cfg.points.len()],
            groups: groups
                .into_iter()
                .map(|(_, points)| Group {
                    points,
                    reads: Vec::new(),
                })
                .collect(),
            schedule,
            planned_pdu: 0,
            read_cap: cfg.max_items,
            write_cap: cfg.max_items,
            cfg,
            bus,
            status,
            outputs,
            out_index,
        }
    }

    /// Runs until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let status = self.status.clone();
        let max = self.cfg.reconnect_max;
        supervise(self, &status, max, cancel).await
    }

    fn plan_config(&self, pdu: u16, max_items: usize) -> PlanConfig {
        PlanConfig {
            merge_gap: self.cfg.merge_gap,
            max_items,
            ..PlanConfig::new(pdu)
        }
    }

    fn plan(&mut self, pdu: u16) -> Result<(), S7Error> {
        let cfg = self.plan_config(pdu, self.read_cap);
        for g in &mut self.groups {
            g.reads = plan_points(&self.cfg.points, &g.points, &self.apart, &cfg)?;
        }
        self.planned_pdu = pdu;
        let n: usize = self
            .groups
            .iter()
            .flat_map(|g| &g.reads)
            .map(|r| r.plan.requests.len())
            .sum();
        self.status.set_planned_requests(n);
        Ok(())
    }

    fn read_signals(&self) -> Vec<SignalId> {
        self.cfg
            .points
            .iter()
            .filter(|p| p.mode.reads())
            .map(|p| p.signal)
            .collect()
    }

    async fn pace(&self) {
        if !self.cfg.request_delay.is_zero() {
            tokio::time::sleep(self.cfg.request_delay).await;
        }
    }

    async fn poll_group(&mut self, client: &mut Client, g: usize) -> Result<(), S7Error> {
        let reads = std::mem::take(&mut self.groups[g].reads);
        let mut replan = false;
        let mut result = Ok(());
        for (i, r) in reads.iter().enumerate() {
            if i > 0 {
                self.pace().await;
            }
            match read_points(client, r, self.cfg.request_delay, Some(&self.status)).await {
                Ok(items) => replan |= self.store(r, items),
                Err(S7Error::ItemCount { got, .. }) => {
                    tracing::info!(driver = %self.cfg.name, items = got,
                        "the PLC answers at most {got} items per request; planning again");
                    self.read_cap = got;
                    replan = true;
                }
                Err(e) => {
                    let signals = r.points.iter().map(|p| self.cfg.points[*p].signal);
                    mark_bad(&self.bus, signals, e.reason());
                    self.status.set_error(Some(format!("reading: {e}")));
                    if e.ends_session() {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        self.groups[g].reads = reads;
        if replan && result.is_ok() {
            self.plan(self.planned_pdu)?;
            // Read what the new plan covers at once rather than a poll period later.
            self.schedule.now(g);
        }
        result
    }

    /// Puts one plan's results on the bus. Returns true when a point must be planned apart.
    fn store(&mut self, reads: &Reads, items: Vec<ItemResult>) -> bool {
        let now = Timestamp::from_system_time(SystemTime::now());
        if let Some((o, _)) = &mut self.outputs {
            // A write from outside that landed while this request was on the wire is pending
            // from here on; otherwise the PLC's old value would overwrite it on the bus and it
            // would never be sent.
            o.collect(&self.bus);
        }
        let mut replan = false;
        for (pi, item) in reads.points.iter().copied().zip(items) {
            let p = &self.cfg.points[pi];
            let out = self.out_index[pi];
            match item {
                Err(ReturnCode::ADDRESS_OUT_OF_RANGE) if !self.apart[pi] => {
                    // Maybe only a neighbour in the same merged item is out of range.
                    self.apart[pi] = true;
                    replan = true;
                }
                Err(code) => {
                    let _ = self
                        .bus
                        .set_quality(p.signal, Quality::Bad(item_reason(code)), now);
                    self.status.set_error(Some(format!(
                        "reading `{}` ({}): the PLC answered {code}",
                        p.signal_name, p.var.address
                    )));
                }
                Ok(_)
                    if out.is_some_and(|oi| {
                        self.outputs.as_ref().is_some_and(|o| o.0.is_pending(oi))
                    }) =>
                {
                    // A write to this point is on its way: the old PLC value must not
                    // overwrite the command on the bus.
                }
                Ok(bytes) => match decode(p, &bytes) {
                    Ok(v) => {
                        if let (Some(oi), Some((o, _))) = (out, &mut self.outputs) {
                            o.observed(oi, &v);
                        }
                        let _ = self.bus.write(p.signal, v, Quality::Good, now);
                    }
                    Err(e) => {
                        tracing::debug!(driver = %self.cfg.name, signal = %p.signal_name, error = %e, "cannot convert");
                        let _ = self.bus.set_quality(
                            p.signal,
                            Quality::Bad(BadReason::Conversion),
                            now,
                        );
                    }
                },
            }
        }
        replan
    }

    /// Writes every pending output; again with smaller requests when the PLC answered fewer
    /// items than sent.
    async fn write_pending(&mut self, client: &mut Client) -> Result<(), S7Error> {
        loop {
            let cap = self.write_cap;
            self.write_once(client).await?;
            if self.write_cap == cap {
                return Ok(());
            }
        }
    }

    async fn write_once(&mut self, client: &mut Client) -> Result<(), S7Error> {
        let Some((outputs, out_points)) = &mut self.outputs else {
            return Ok(());
        };
        outputs.collect(&self.bus);
        let mut writes: Vec<Write> = Vec::new();
        let mut sources: Vec<(usize, Value)> = Vec::new();
        for (oi, v) in outputs.pending() {
            let p = &self.cfg.points[out_points[oi]];
            match value::from_value(&v, p.var.ty)
                .and_then(|s7| p.var.write(&s7).map_err(|e| e.to_string()))
            {
                Ok(w) => {
                    writes.push(w);
                    sources.push((oi, v));
                }
                Err(e) => {
                    // It will never convert: count it and forget it, rather than retry forever.
                    self.status.count_write_failure();
                    let msg = format!("cannot write `{}` ({}): {e}", p.signal_name, p.var.address);
                    tracing::warn!(driver = %self.cfg.name, "{msg}");
                    self.status.set_error(Some(msg));
                    outputs.written(oi, &v);
                }
            }
        }
        if writes.is_empty() {
            self.status.set_pending_writes(0);
            return Ok(());
        }
        let plan = plan_writes(&writes, &self.plan_config(self.planned_pdu, self.write_cap))
            .map_err(|e| S7Error::Mismatch(format!("cannot plan the writes: {e}")))?;
        // Per input write: Some(code) once a piece of it failed or was not written.
        let mut failed: Vec<Option<String>> = vec![None; writes.len()];
        for (i, req) in plan.requests.iter().enumerate() {
            if i > 0 {
                self.pace().await;
            }
            let r = client.write(&req.items).await;
            self.status.count(match &r {
                Ok(codes) if codes.iter().all(|c| c.is_success()) => RequestResult::Ok,
                Ok(_) => RequestResult::Exception,
                Err(e) => e.result(),
            });
            // The codes, or why none of the request's items were written.
            let codes: Result<Vec<ReturnCode>, String> = match r {
                Ok(codes) => Ok(codes),
                Err(S7Error::ItemCount { got, .. }) => {
                    tracing::info!(driver = %self.cfg.name, items = got,
                        "the PLC takes at most {got} items per write; writing again");
                    self.write_cap = got;
                    // Which items it took is not known: write_pending writes them all again
                    // (writes are idempotent), in smaller requests.
                    return Ok(());
                }
                Err(e) if e.ends_session() => {
                    self.status.count_write_failure();
                    return Err(e);
                }
                Err(e) => Err(e.to_string()),
            };
            for (j, &source) in req.sources.iter().enumerate() {
                let why = match codes.as_ref().map(|c| c.get(j)) {
                    Ok(Some(c)) if c.is_success() => continue,
                    Ok(Some(c)) => format!("the PLC answered {c}"),
                    Ok(None) => "no answer for the item".to_string(),
                    Err(why) => why.clone(),
                };
                if let Some(slot @ None) = failed.get_mut(source) {
                    *slot = Some(why);
                }
            }
        }
        let Some((outputs, out_points)) = &mut self.outputs else {
            return Ok(());
        };
        for ((oi, v), why) in sources.into_iter().zip(failed) {
            match why {
                None => outputs.written(oi, &v),
                Some(why) => {
                    let p = &self.cfg.points[out_points[oi]];
                    self.status.count_write_failure();
                    let msg = format!("writing `{}` ({}): {why}", p.signal_name, p.var.address);
                    tracing::warn!(driver = %self.cfg.name, "{msg}; will retry");
                    self.status.set_error(Some(msg));
                }
            }
        }
        self.status.set_pending_writes(outputs.pending_count());
        Ok(())
    }

    async fn session_loop(
        &mut self,
        client: &mut Client,
        cancel: &CancellationToken,
    ) -> Option<S7Error> {
        if client.pdu_size() != self.planned_pdu
            && let Err(e) = self.plan(client.pdu_size())
        {
            return Some(e);
        }
        loop {
            if let Err(e) = self.write_pending(client).await {
                return Some(e);
            }
            let now = Instant::now();
            for g in 0..self.groups.len() {
                if !self.schedule.is_due(g, now) {
                    continue;
                }
                if let Err(e) = self.poll_group(client, g).await {
                    return Some(e);
                }
                self.schedule.polled(g);
            }
            let outputs = self.outputs.as_ref().map(|o| &o.0);
            if !idle(cancel, &self.schedule, outputs).await {
                return None;
            }
        }
    }
}

impl Device for Driver {
    type Link = Client;
    type Error = S7Error;

    fn target(&self) -> String {
        format!("s7://{}", self.cfg.target())
    }

    async fn connect(&mut self) -> Result<Client, S7Error> {
        Client::connect(&self.cfg).await
    }

    async fn session(
        &mut self,
        client: &mut Client,
        cancel: &CancellationToken,
    ) -> Option<S7Error> {
        self.session_loop(client, cancel).await
    }

    async fn close(&mut self, client: Client) {
        client.close().await
    }

    fn unreachable(&mut self) {
        mark_bad(&self.bus, self.read_signals(), BadReason::NotConnected);
    }

    fn linked(&mut self) {
        if let Some((o, _)) = &mut self.outputs {
            o.reconnected(&self.bus);
        }
    }
}
