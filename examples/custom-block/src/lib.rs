//! A custom block in its own crate: RUN_HOURS, a run-hours meter for maintenance planning.
//! See docs/sdk.md. Register it next to the built-ins with `registry.register(&RUN_HOURS)`.

use petra_engine::{Block, BlockType, BuildCtx, BuildResult, Io, ParamSpec, PortSpec, PortType};

const fn port(name: &'static str, ty: PortType, required: bool, doc: &'static str) -> PortSpec {
    PortSpec {
        name,
        ty,
        required,
        variadic: false,
        doc,
    }
}

/// `in` (bool, running) and `r` (bool, reset) → `hours` (float): time `in` was true, in hours.
pub static RUN_HOURS: BlockType = BlockType {
    name: "RUN_HOURS",
    aliases: &[],
    summary: "Run-hours meter: accumulates the time its input is true",
    inputs: &[
        port("in", PortType::Bool, true, "equipment running"),
        port("r", PortType::Bool, false, "reset to zero while true"),
    ],
    outputs: &[port(
        "hours",
        PortType::Float,
        false,
        "accumulated running time in hours",
    )],
    params: &[ParamSpec {
        name: "start",
        ty: petra_engine::ParamType::Float,
        required: false,
        min: Some(0.0),
        max: None,
        doc: "hours already on the meter when it is installed; default 0",
    }],
    build,
};

fn build(ctx: &BuildCtx<'_>) -> BuildResult {
    Ok(Box::new(RunHours {
        seconds: ctx.params.float_or("start", 0.0) * 3600.0,
    }))
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
    fn adopt(&mut self, previous: &mut dyn Block) {
        if let Some(old) = petra_engine::previous::<RunHours>(previous) {
            self.seconds = old.seconds;
        }
    }
}
