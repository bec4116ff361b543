//! `ldirectord ocf ACTION`: the OCF resource agent (see [`crate::ra::ocf`]); the installed
//! agent script runs this.

use std::process::ExitCode;

use crate::ra::ocf;

pub fn run(args: &[String]) -> ExitCode {
    // args[0] is "ocf"; the action follows. OCF agents also see it as $__OCF_ACTION.
    let action = args
        .get(1)
        .cloned()
        .or_else(|| std::env::var("__OCF_ACTION").ok());
    let params = ocf::Params::from_env(|k| std::env::var(k).ok());
    ExitCode::from(ocf::run(action.as_deref(), &params))
}
