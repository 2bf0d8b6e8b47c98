//! Petra's built-in function blocks.

use petra_engine::{BlockType, Registry};

/// Every built-in block type.
pub static BUILTIN: &[&BlockType] = &[];

/// A registry holding every built-in block.
pub fn builtin() -> Registry {
    let mut r = Registry::new();
    for t in BUILTIN {
        r.register(t).expect("built-in block names are unique");
    }
    r
}
