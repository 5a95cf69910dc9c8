//! Dotted parameter paths while visiting or mapping a burn module (`blocks.0.attn_adapter.up.weight`).
//! Enum variants are not part of a path: the configuration fixes the variant. These paths are
//! the checkpoint's tensor names and the optimizer state's keys.

/// The stack of module names entered so far.
#[derive(Debug, Clone, Default)]
pub struct PathStack {
    stack: Vec<String>,
}

impl PathStack {
    /// Call from `enter_module`.
    pub fn enter(&mut self, name: &str, container_type: &str) {
        if !container_type.starts_with("Enum:") {
            self.stack.push(name.to_string());
        }
    }

    /// Call from `exit_module`.
    pub fn exit(&mut self, container_type: &str) {
        if !container_type.starts_with("Enum:") {
            self.stack.pop();
        }
    }

    /// The current dotted path.
    pub fn path(&self) -> String {
        self.stack.join(".")
    }
}
