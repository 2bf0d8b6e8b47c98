//! A custom block in its own crate: RUN_HOURS, a run-hours meter for maintenance planning.
//! See docs/sdk.md. Register it next to the built-ins with `registry.register(&RUN_HOURS)`.

use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, ParamSpec, ParamType, PortSpec};
use petra_engine::{PortType::Bool, PortType::Float, previous};

/// `in` (bool, running) and `r` (bool, reset) → `hours` (float): time `in` was true, in hours.
pub static RUN_HOURS: BlockType = BlockType {
    name: "RUN_HOURS",
    aliases: &[],
    summary: "Run-hours meter: accumulates the time its input is true",
    inputs: &[
        PortSpec::required("in", Bool, "equipment running"),
        PortSpec::optional("r", Bool, "reset to zero while true"),
    ],
    outputs: &[PortSpec::output(
        "hours",
        Float,
        "accumulated running time in hours",
    )],
    params: &[ParamSpec::optional(
        "start",
        ParamType::Float,
        "hours already on the meter; default 0",
    )
    .range(Some(0.0), None)],
    build,
};

fn build(ctx: &BuildCtx<'_>) -> BuildResult {
    let seconds = ctx.params.float_or("start", 0.0) * 3600.0;
    Ok(Box::new(RunHours { seconds }))
}

struct RunHours {
    seconds: f64,
}

impl Block for RunHours {
    fn execute(&mut self, io: &mut Io<'_>) {
        if io.bool(1) {
            self.seconds = 0.0;
        } else if io.bool(0) {
            self.seconds += io.dt().as_secs_f64(); // scan time, never the wall clock
        }
        io.set_float(0, self.seconds / 3600.0);
    }

    /// A configuration reload must not reset the meter.
    fn adopt(&mut self, old: &mut dyn Block) {
        if let Some(old) = previous::<RunHours>(old) {
            self.seconds = old.seconds;
        }
    }
}
