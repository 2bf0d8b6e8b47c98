//! The block registry: every block type the configuration may name.
//!
//! `petra_blocks::builtin()` fills one with Petra's own blocks. The block SDK is this type: an
//! application embedding the engine registers its own [`BlockType`]s next to the built-in ones,
//! and the configuration compiler checks them exactly like the built-ins.

use crate::EngineError;
use crate::block::BlockType;
use std::collections::BTreeMap;

/// Block types by upper-case name (aliases included).
#[derive(Default)]
pub struct Registry {
    by_name: BTreeMap<&'static str, &'static BlockType>,
    types: Vec<&'static BlockType>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a block type. Its name and aliases must be upper case and not taken.
    pub fn register(&mut self, t: &'static BlockType) -> Result<(), EngineError> {
        for name in std::iter::once(&t.name).chain(t.aliases) {
            if self.by_name.contains_key(name) || name.to_uppercase() != *name {
                return Err(EngineError::BlockTypeName((*name).to_string()));
            }
        }
        for name in std::iter::once(t.name).chain(t.aliases.iter().copied()) {
            self.by_name.insert(name, t);
        }
        self.types.push(t);
        Ok(())
    }

    /// Looks a block type up by name or alias.
    pub fn get(&self, name: &str) -> Option<&'static BlockType> {
        self.by_name.get(name).copied()
    }

    /// Every registered type, in registration order (aliases not repeated).
    pub fn types(&self) -> &[&'static BlockType] {
        &self.types
    }
}
