//! Decision rules compiled to regorus's bytecode VM (RVM), with a pool of prepared VMs: the
//! fast path of [`RegoPolicyEngine`](super::RegoPolicyEngine) (the interpreter stays the
//! fallback for what the VM cannot compile or run).

use std::sync::{Mutex, PoisonError};

use regorus::Value;

use super::POOL_MAX;
use super::error::RegoError;

/// A rule compiled to regorus's bytecode VM, with idle VMs ready to run it.
pub(super) struct Compiled {
    path: String,
    program: std::sync::Arc<regorus::rvm::program::Program>,
    data: Value,
    timer: regorus::utils::limits::ExecutionTimerConfig,
    idle: Mutex<Vec<regorus::rvm::RegoVM>>,
}

pub(super) fn compile_rvm(
    engine: &mut regorus::Engine,
    path: &str,
    data: &Value,
    timer: regorus::utils::limits::ExecutionTimerConfig,
) -> Result<Compiled, RegoError> {
    let policy = engine
        .compile_with_entrypoint(&path.into())
        .map_err(RegoError::new)?;
    let program =
        regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[path])
            .map_err(RegoError::new)?;
    Ok(Compiled {
        path: path.to_string(),
        program,
        data: data.clone(),
        timer,
        idle: Mutex::new(Vec::new()),
    })
}

impl Compiled {
    pub(super) fn eval(&self, input: &Value) -> Result<Value, RegoError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut vm = match idle {
            Some(vm) => vm,
            None => {
                let mut vm = regorus::rvm::RegoVM::new();
                vm.load_program(std::sync::Arc::clone(&self.program));
                vm.set_execution_timer_config(Some(self.timer));
                vm.set_data(self.data.clone()).map_err(RegoError::new)?;
                vm
            }
        };
        vm.set_input(input.clone());
        let out = vm
            .execute_entry_point_by_name(&self.path)
            .map_err(RegoError::new);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < POOL_MAX {
            idle.push(vm);
        }
        out
    }
}
