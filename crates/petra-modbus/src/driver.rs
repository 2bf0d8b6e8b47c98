//! The Modbus driver: one tokio task per device, polling planned reads into the bus and writing
//! changed outputs, on tokio-modbus.
//!
//! # The rules that make it survive bad devices
//!
//! - **Every request has a timeout**, and any timeout, transport error or malformed / mismatched
//!   answer (wrong transaction id, wrong unit, wrong function, short data) ends the session: the
//!   connection (or serial port) is dropped and opened again, so a late answer can never be
//!   taken for the answer to the next request. Only exception responses keep the session — the
//!   device answered properly.
//! - **Reconnects** wait a capped exponential backoff with jitter ([`petra_drivers::Backoff`])
//!   after a failed connect; the first reconnect after a lost session is immediate.
//! - **Quality tells the truth**: every read point turns `bad(not_connected)` while the device
//!   cannot be reached, the points of a timed-out request `bad(timeout)`, of an exception
//!   `bad(device_error)`, a point the device rejects alone `bad(config_error)`, a value that does
//!   not convert `bad(conversion)`; each turns good again with its next good read.
//! - **A silent unit does not block the line**: after a timeout, that unit is skipped for a
//!   backoff period while the other units on the line (RTU) or behind the gateway (TCP) go on.
//! - **Exception 2 splits the batch**: a read answered with "illegal data address" escalates the
//!   merge level of its points ([`crate::plan::Merge`]) and is planned again — first without
//!   gaps, then point by point — so only the points the device really rejects end up bad.
//! - **Writes** go first on every pass (a command should not wait behind a poll), coalesced, with
//!   function 5 (coil), 6 (one register) or 16 (several); a bit inside a holding register is read,
//!   changed and written back (3 + 6). A failed write stays pending and is retried on every pass.

use crate::codec;
use crate::config::{ModbusConfig, ModbusPoint, Parity, Transport};
use crate::plan::{self, Merge, PlanPoint, ReadRequest};
use crate::point::Area;
use petra_core::{BadReason, Bus, Quality, SignalId, Timestamp, Value};
use petra_drivers::{
    Backoff, Device, DriverStatus, Outputs, RECONNECT_MIN, RequestResult, Schedule, idle, mark_bad,
    output_points, poll_groups, supervise,
};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tokio_modbus::client::{Client, Context};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Request, Response, Slave};
use tokio_util::sync::CancellationToken;

/// Why a request or a connect failed.
#[derive(Debug, thiserror::Error)]
pub enum ModbusError {
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("cannot open serial port {target}: {source}")]
    Serial {
        target: String,
        source: tokio_serial::Error,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Transport(#[from] std::io::Error),
    #[error("malformed or mismatched answer: {0}")]
    Protocol(String),
    #[error("the device answered exception {n} ({0})", n = exception_number(.0))]
    Exception(ExceptionCode),
}

fn exception_number(code: &ExceptionCode) -> u8 {
    u8::from(*code)
}

impl ModbusError {
    /// Whether the session must be dropped (anything but an exception answer).
    pub fn ends_session(&self) -> bool {
        !matches!(self, ModbusError::Exception(_))
    }

    fn result(&self) -> RequestResult {
        match self {
            ModbusError::Exception(_) => RequestResult::Exception,
            ModbusError::Timeout(_) => RequestResult::Timeout,
            _ => RequestResult::Error,
        }
    }

    pub fn reason(&self) -> BadReason {
        match self {
            ModbusError::Exception(ExceptionCode::IllegalDataAddress) => BadReason::ConfigError,
            ModbusError::Exception(_) | ModbusError::Protocol(_) => BadReason::DeviceError,
            ModbusError::Timeout(_) => BadReason::Timeout,
            _ => BadReason::NotConnected,
        }
    }
}

/// What a read request brought back.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Bits(Vec<bool>),
    Registers(Vec<u16>),
}

/// Where the device is, in words: `tcp://host:port` or the serial path.
pub fn target(t: &Transport) -> String {
    match t {
        Transport::Tcp { host, port } => format!("tcp://{host}:{port}"),
        Transport::Rtu(line) => format!("rtu://{}", line.path.display()),
    }
}

/// Opens a session with the device.
pub async fn connect(cfg: &ModbusConfig) -> Result<Context, ModbusError> {
    let target = target(&cfg.transport);
    let ctx = match &cfg.transport {
        Transport::Tcp { host, port } => {
            let stream = tokio::time::timeout(
                cfg.timeout,
                tokio::net::TcpStream::connect((host.as_str(), *port)),
            )
            .await
            .map_err(|_| ModbusError::Timeout(cfg.timeout))?
            .map_err(|source| ModbusError::Connect {
                target: target.clone(),
                source,
            })?;
            // Requests are small and answered one at a time: send each at once.
            stream.set_nodelay(true)?;
            tokio_modbus::client::tcp::attach(stream)
        }
        Transport::Rtu(line) => {
            use tokio_serial::{DataBits, StopBits};
            let builder = tokio_serial::new(line.path.to_string_lossy(), line.baud)
                .parity(match line.parity {
                    Parity::None => tokio_serial::Parity::None,
                    Parity::Even => tokio_serial::Parity::Even,
                    Parity::Odd => tokio_serial::Parity::Odd,
                })
                .stop_bits(if line.stop_bits == 2 {
                    StopBits::Two
                } else {
                    StopBits::One
                })
                .data_bits(if line.data_bits == 7 {
                    DataBits::Seven
                } else {
                    DataBits::Eight
                });
            let port = tokio_serial::SerialStream::open(&builder).map_err(|source| {
                ModbusError::Serial {
                    target: target.clone(),
                    source,
                }
            })?;
            tokio_modbus::client::rtu::attach(port)
        }
    };
    if !cfg.connect_delay.is_zero() {
        tokio::time::sleep(cfg.connect_delay).await;
    }
    Ok(ctx)
}

/// One request with the driver's timeout; checks that the answer is the one asked for.
async fn call(
    ctx: &mut Context,
    unit: u8,
    timeout: Duration,
    req: Request<'_>,
) -> Result<Response, ModbusError> {
    ctx.set_slave(Slave(unit));
    match tokio::time::timeout(timeout, ctx.call(req)).await {
        Err(_) => Err(ModbusError::Timeout(timeout)),
        Ok(Err(tokio_modbus::Error::Transport(e))) => Err(ModbusError::Transport(e)),
        Ok(Err(tokio_modbus::Error::Protocol(e))) => Err(ModbusError::Protocol(e.to_string())),
        Ok(Ok(Err(code))) => Err(ModbusError::Exception(code)),
        Ok(Ok(Ok(rsp))) => Ok(rsp),
    }
}

/// Reads one planned request. A short or wrong-kind answer is a protocol error.
pub async fn read(
    ctx: &mut Context,
    req: &ReadRequest,
    timeout: Duration,
) -> Result<Data, ModbusError> {
    let (start, n) = (req.start, req.count);
    let request = match req.area {
        Area::Coil => Request::ReadCoils(start, n),
        Area::Discrete => Request::ReadDiscreteInputs(start, n),
        Area::Input => Request::ReadInputRegisters(start, n),
        Area::Holding => Request::ReadHoldingRegisters(start, n),
    };
    let short = |got: usize| {
        ModbusError::Protocol(format!(
            "asked for {n} {} from {start}, got {got}",
            if req.area.is_bits() {
                "bits"
            } else {
                "registers"
            }
        ))
    };
    match call(ctx, req.unit, timeout, request).await? {
        Response::ReadCoils(mut b) | Response::ReadDiscreteInputs(mut b) => {
            if b.len() < n as usize {
                return Err(short(b.len()));
            }
            b.truncate(n as usize);
            Ok(Data::Bits(b))
        }
        Response::ReadInputRegisters(r) | Response::ReadHoldingRegisters(r) => {
            if r.len() != n as usize {
                return Err(short(r.len()));
            }
            Ok(Data::Registers(r))
        }
        other => Err(ModbusError::Protocol(format!(
            "unexpected answer {other:?}"
        ))),
    }
}

/// Writes `value` to a point.
pub async fn write(
    ctx: &mut Context,
    p: &ModbusPoint,
    value: &Value,
    timeout: Duration,
) -> Result<(), ModbusError> {
    let conv = |e: codec::CodecError| ModbusError::Protocol(format!("cannot encode: {e}"));
    let (request, expect) = match (p.area, p.encoding.bit) {
        (Area::Coil, _) => {
            let on = codec::encode_bit(value).map_err(conv)?;
            (
                Request::WriteSingleCoil(p.address, on),
                Response::WriteSingleCoil(p.address, on),
            )
        }
        (Area::Holding, Some(bit)) => {
            let on = codec::encode_bit(value).map_err(conv)?;
            let req = ReadRequest {
                unit: p.unit,
                area: Area::Holding,
                start: p.address,
                count: 1,
                points: Vec::new(),
            };
            let Data::Registers(r) = read(ctx, &req, timeout).await? else {
                return Err(ModbusError::Protocol("registers expected".into()));
            };
            let word = codec::with_bit(r[0], bit, on);
            (
                Request::WriteSingleRegister(p.address, word),
                Response::WriteSingleRegister(p.address, word),
            )
        }
        (Area::Holding, None) => {
            let words = codec::encode_registers(&p.encoding, value).map_err(conv)?;
            if words.len() == 1 {
                (
                    Request::WriteSingleRegister(p.address, words[0]),
                    Response::WriteSingleRegister(p.address, words[0]),
                )
            } else {
                let n = words.len() as u16;
                (
                    Request::WriteMultipleRegisters(p.address, Cow::Owned(words)),
                    Response::WriteMultipleRegisters(p.address, n),
                )
            }
        }
        (area, _) => {
            return Err(ModbusError::Protocol(format!(
                "the {area} area cannot be written"
            )));
        }
    };
    let got = call(ctx, p.unit, timeout, request).await?;
    if got != expect {
        return Err(ModbusError::Protocol(format!(
            "write answered {got:?}, expected {expect:?}"
        )));
    }
    Ok(())
}

/// The value of point `p` in the data of a request that starts at `start`. The point's
/// encoding must have passed [`codec::check`] (the configuration compiler checks every point).
#[inline]
pub fn decode(p: &ModbusPoint, start: u16, data: &Data) -> Result<Value, codec::CodecError> {
    let off = usize::from(p.address - start);
    match data {
        Data::Bits(b) => codec::decode_bit(b[off], p.signal_type),
        Data::Registers(r) => {
            let regs = &r[off..off + usize::from(p.count())];
            match p.encoding.bit {
                Some(bit) => codec::decode_bit(regs[0] & (1 << bit) != 0, p.signal_type),
                None => codec::decode_checked(&p.encoding, regs, p.signal_type),
            }
        }
    }
}

/// The raw words or bits of point `p` in a request's data, for `petra probe`.
pub fn raw(p: &ModbusPoint, start: u16, data: &Data) -> Data {
    let off = usize::from(p.address - start);
    match data {
        Data::Bits(b) => Data::Bits(b[off..off + 1].to_vec()),
        Data::Registers(r) => Data::Registers(r[off..off + usize::from(p.count())].to_vec()),
    }
}

/// Points that share a poll period (group `g` of the driver's [`Schedule`]), with their
/// current plan.
struct Group {
    /// Indices into the driver's points.
    points: Vec<usize>,
    requests: Vec<ReadRequest>,
}

/// The read plan of a set of points, with each point's merge level; replanned when the device
/// rejects a batch.
pub struct Planner {
    max_gap: u16,
    merge: Vec<Merge>,
}

impl Planner {
    pub fn new(points: usize, max_gap: u16) -> Planner {
        Planner {
            max_gap,
            merge: vec![Merge::Gap; points],
        }
    }

    /// Requests for `which` (indices into `points`); request point indices are indices into
    /// `points` too.
    pub fn plan(&self, points: &[ModbusPoint], which: &[usize]) -> Vec<ReadRequest> {
        let pp: Vec<PlanPoint> = which
            .iter()
            .map(|i| PlanPoint {
                unit: points[*i].unit,
                area: points[*i].area,
                address: points[*i].address,
                count: points[*i].count(),
                merge: self.merge[*i],
            })
            .collect();
        let mut reqs = plan::plan(&pp, self.max_gap);
        for r in &mut reqs {
            for p in &mut r.points {
                *p = which[*p];
            }
        }
        reqs
    }

    /// The device answered `req` with "illegal data address". Returns true when the points
    /// should be planned again (the request held several); false when the one point is
    /// rejected on its own.
    pub fn rejected(&mut self, req: &ReadRequest) -> bool {
        if req.points.len() < 2 {
            if let Some(p) = req.points.first() {
                self.merge[*p] = Merge::Alone;
            }
            return false;
        }
        for p in &req.points {
            self.merge[*p] = self.merge[*p].escalate();
        }
        true
    }
}

/// A running Modbus driver.
pub struct Driver {
    /// Shared with whoever started the driver (`petra run` keeps it to compare on reload):
    /// 100,000 points are about 10 MB, kept once.
    cfg: Arc<ModbusConfig>,
    bus: Arc<Bus>,
    status: Arc<DriverStatus>,
    /// Output points (`mode: write|readwrite`) and, for each, its index in `cfg.points`.
    outputs: Option<(Outputs, Vec<usize>)>,
    /// For each point: its output index, if it has one.
    out_index: Vec<Option<usize>>,
    planner: Planner,
    groups: Vec<Group>,
    schedule: Schedule,
    /// Units that timed out, skipped until the instant.
    silent: HashMap<u8, (Backoff, Instant)>,
}

impl Driver {
    /// `writes` must be a change feed over the signals of the output points (see
    /// [`ModbusConfig::output_signals`]); `None` when there are none.
    pub fn new(
        cfg: impl Into<Arc<ModbusConfig>>,
        bus: Arc<Bus>,
        status: Arc<DriverStatus>,
        writes: Option<petra_core::LatestFeed>,
    ) -> Driver {
        let cfg = cfg.into();
        let (outputs, out_index) =
            output_points(writes, cfg.points.iter().map(|p| (p.signal, p.mode)));
        let planner = Planner::new(cfg.points.len(), cfg.max_gap);
        let groups = poll_groups(cfg.points.iter().map(|p| p.mode.reads().then_some(p.poll)));
        let schedule = Schedule::new(groups.iter().map(|(p, _)| *p));
        let groups = groups
            .into_iter()
            .map(|(_, points)| Group {
                requests: planner.plan(&cfg.points, &points),
                points,
            })
            .collect();
        let d = Driver {
            cfg,
            bus,
            status,
            outputs,
            out_index,
            planner,
            groups,
            schedule,
            silent: HashMap::new(),
        };
        d.report_plan();
        d
    }

    fn report_plan(&self) {
        let n: usize = self.groups.iter().map(|g| g.requests.len()).sum();
        self.status.set_planned_requests(n);
    }

    fn read_signals(&self) -> impl Iterator<Item = SignalId> + '_ {
        self.cfg
            .points
            .iter()
            .filter(|p| p.mode.reads())
            .map(|p| p.signal)
    }

    /// Runs until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let status = self.status.clone();
        let max = self.cfg.reconnect_max;
        supervise(self, &status, max, cancel).await
    }

    /// Polls and writes until the session fails (returns the error) or `cancel` (None).
    async fn session_loop(
        &mut self,
        ctx: &mut Context,
        cancel: &CancellationToken,
    ) -> Option<ModbusError> {
        loop {
            if let Err(e) = self.write_pending(ctx).await {
                return Some(e);
            }
            let now = Instant::now();
            for g in 0..self.groups.len() {
                if !self.schedule.is_due(g, now) {
                    continue;
                }
                if let Err(e) = self.poll_group(ctx, g).await {
                    return Some(e);
                }
                self.schedule.polled(g);
            }
            if !idle(cancel, &self.schedule, self.outputs.as_ref().map(|o| &o.0)).await {
                return None;
            }
        }
    }

    async fn pace(&self) {
        if !self.cfg.request_delay.is_zero() {
            tokio::time::sleep(self.cfg.request_delay).await;
        }
    }

    async fn write_pending(&mut self, ctx: &mut Context) -> Result<(), ModbusError> {
        let Some((outputs, _)) = &mut self.outputs else {
            return Ok(());
        };
        outputs.collect(&self.bus);
        let pending = outputs.pending();
        for (oi, value) in pending {
            let pi = self.outputs.as_ref().map(|o| o.1[oi]).unwrap_or_default();
            let p = self.cfg.points[pi].clone();
            let r = write(ctx, &p, &value, self.cfg.timeout).await;
            self.pace().await;
            if r.is_ok() {
                self.answered(p.unit);
            }
            let outputs = &mut self.outputs.as_mut().expect("outputs exist").0;
            match r {
                Ok(()) => outputs.written(oi, &value),
                Err(e) => {
                    self.status.count(e.result());
                    self.status.count_write_failure();
                    let msg = format!(
                        "writing `{}` ({} {} of unit {}): {e}",
                        p.signal_name, p.area, p.address, p.unit
                    );
                    tracing::warn!(driver = %self.cfg.name, "{msg}; will retry");
                    self.status.set_error(Some(msg));
                    if e.ends_session() {
                        self.status.set_pending_writes(outputs.pending_count());
                        return Err(e);
                    }
                }
            }
        }
        let n = self.outputs.as_ref().map_or(0, |o| o.0.pending_count());
        self.status.set_pending_writes(n);
        Ok(())
    }

    async fn poll_group(&mut self, ctx: &mut Context, g: usize) -> Result<(), ModbusError> {
        let mut replan = false;
        let requests = std::mem::take(&mut self.groups[g].requests);
        let mut result = Ok(());
        for req in &requests {
            if let Some((_, until)) = self.silent.get(&req.unit)
                && Instant::now() < *until
            {
                continue;
            }
            let r = read(ctx, req, self.cfg.timeout).await;
            self.pace().await;
            match r {
                Ok(data) => {
                    self.answered(req.unit);
                    self.store(req, &data);
                }
                Err(e) => {
                    self.status.count(e.result());
                    if matches!(e, ModbusError::Exception(ExceptionCode::IllegalDataAddress))
                        && self.planner.rejected(req)
                    {
                        replan = true;
                        continue;
                    }
                    let signals: Vec<SignalId> = req
                        .points
                        .iter()
                        .map(|p| self.cfg.points[*p].signal)
                        .collect();
                    mark_bad(&self.bus, signals, e.reason());
                    let first = &self.cfg.points[req.points[0]];
                    self.status.set_error(Some(format!(
                        "reading {} {}..{} of unit {} (`{}`…): {e}",
                        req.area,
                        req.start,
                        u32::from(req.start) + u32::from(req.count) - 1,
                        req.unit,
                        first.signal_name
                    )));
                    if matches!(e, ModbusError::Timeout(_)) {
                        self.silence(req.unit);
                    }
                    if e.ends_session() {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        self.groups[g].requests = requests;
        if replan {
            let grp = &mut self.groups[g];
            grp.requests = self.planner.plan(&self.cfg.points, &grp.points);
            // Read the split requests at once rather than a poll period later.
            self.schedule.now(g);
            self.report_plan();
        }
        result
    }

    /// A unit answered: it is not silent, and the device is connected.
    fn answered(&mut self, unit: u8) {
        self.status.count(RequestResult::Ok);
        self.silent.remove(&unit);
        if !self.status.is_connected() {
            self.status.set_connected(true);
            self.status.set_error(None);
        }
    }

    /// A unit that did not answer: its points are bad, and it is skipped for a while. When no
    /// unit answers any more, the device counts as disconnected.
    fn silence(&mut self, unit: u8) {
        let max = self.cfg.reconnect_max;
        let (backoff, until) = self
            .silent
            .entry(unit)
            .or_insert_with(|| (Backoff::new(RECONNECT_MIN, max), Instant::now()));
        *until = Instant::now() + backoff.next_delay();
        let signals: Vec<SignalId> = self
            .cfg
            .points
            .iter()
            .filter(|p| p.unit == unit && p.mode.reads())
            .map(|p| p.signal)
            .collect();
        mark_bad(&self.bus, signals, BadReason::Timeout);
        let all_silent = self
            .cfg
            .points
            .iter()
            .all(|p| self.silent.contains_key(&p.unit));
        if all_silent {
            self.status.set_connected(false);
        }
    }

    fn store(&mut self, req: &ReadRequest, data: &Data) {
        let now = Timestamp::from_system_time(SystemTime::now());
        if let Some((o, _)) = &mut self.outputs {
            // A write from outside that landed while this request was on the wire is pending
            // from here on; otherwise the device's old value would overwrite it on the bus and
            // it would never be sent.
            o.collect(&self.bus);
        }
        for pi in &req.points {
            let p = &self.cfg.points[*pi];
            let out = self.out_index[*pi];
            if let (Some(oi), Some((o, _))) = (out, &self.outputs)
                && o.is_pending(oi)
            {
                // A write to this point is on its way: the old device value must not
                // overwrite the command on the bus.
                continue;
            }
            match decode(p, req.start, data) {
                Ok(v) => {
                    if let (Some(oi), Some((o, _))) = (out, &mut self.outputs) {
                        o.observed(oi, &v);
                    }
                    let _ = self.bus.write(p.signal, v, Quality::Good, now);
                }
                Err(e) => {
                    tracing::debug!(driver = %self.cfg.name, signal = %p.signal_name, error = %e, "cannot convert");
                    let _ =
                        self.bus
                            .set_quality(p.signal, Quality::Bad(BadReason::Conversion), now);
                }
            }
        }
    }
}

impl Device for Driver {
    type Link = Context;
    type Error = ModbusError;

    fn target(&self) -> String {
        target(&self.cfg.transport)
    }

    async fn connect(&mut self) -> Result<Context, ModbusError> {
        connect(&self.cfg).await
    }

    async fn session(
        &mut self,
        ctx: &mut Context,
        cancel: &CancellationToken,
    ) -> Option<ModbusError> {
        self.session_loop(ctx, cancel).await
    }

    async fn close(&mut self, mut ctx: Context) {
        let _ = ctx.disconnect().await;
    }

    fn unreachable(&mut self) {
        mark_bad(
            &self.bus,
            self.read_signals().collect::<Vec<_>>(),
            BadReason::NotConnected,
        );
    }

    fn linked(&mut self) {
        if let Some((o, _)) = &mut self.outputs {
            o.reconnected(&self.bus);
        }
    }

    /// A serial port opens whether or not anything is on the line: an RTU device is connected
    /// from its first answer (see `answered`).
    fn link_proves_device(&self) -> bool {
        matches!(self.cfg.transport, Transport::Tcp { .. })
    }
}
