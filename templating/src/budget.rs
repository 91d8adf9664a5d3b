//! The step and size budget of one template run, charged by execution and by the functions
//! alike (a module of its own so that `funcs` need not import `exec`).

use crate::Limits;

/// Tracks one run against its [`Limits`].
pub(crate) struct Budget {
    pub limits: Limits,
    steps: u64,
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget { limits, steps: 0 }
    }

    pub fn step(&mut self, units: u64) -> Result<(), String> {
        self.steps = self.steps.saturating_add(units);
        if self.steps > self.limits.max_steps {
            return Err(format!(
                "evaluation exceeded the limit of {} steps",
                self.limits.max_steps
            ));
        }
        Ok(())
    }

    /// Charges for bytes a function reads or writes: one step per KiB.
    pub fn charge_bytes(&mut self, bytes: usize) -> Result<(), String> {
        self.step((bytes / 1024) as u64)
    }

    /// Checked before allocating a result of `needed` bytes (computed with saturating math).
    pub fn fits(&self, what: &str, needed: usize) -> Result<(), String> {
        if needed > self.limits.max_output_bytes {
            return Err(format!(
                "{what}: result would exceed the limit of {} bytes",
                self.limits.max_output_bytes
            ));
        }
        Ok(())
    }
}
