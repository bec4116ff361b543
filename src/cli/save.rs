//! `ldirectord save [-n] [--json]`: the kernel's IPVS table as `ipvsadm -S` prints it
//! (input for `ipvsadm -R`), read over netlink. `--json` prints the configuration part of
//! the documented JSON form (docs/json-schema.md): no counters.

use std::process::ExitCode;

use clap::Parser;

use super::args::parse_args;
use super::exit;
use super::list::{Captured, parse_args_captured, to_json, with_kernel};
use super::names::SystemNames;
use crate::ipvs::listing::{self, Names, Numeric};
use crate::ipvs::{Backend, Info, IpvsClient, Table};

#[derive(Parser, Debug, Clone, Default, PartialEq, Eq)]
#[command(
    name = "ldirectord save",
    about = "Print the kernel's IPVS table as `ipvsadm -S` does"
)]
pub struct SaveArgs {
    /// Numeric output of addresses and ports.
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// JSON instead of ipvsadm rules.
    #[arg(long)]
    pub json: bool,
}

/// The text (or JSON) of a save.
pub fn render(args: &SaveArgs, info: &Info, table: &Table, names: &mut dyn Names) -> String {
    if args.json {
        to_json(&listing::json_table(info, table, true, false))
    } else {
        listing::render_save(table, args.numeric, names)
    }
}

pub fn run(args: &[String]) -> ExitCode {
    match parse_args("ldirectord save", "save", args) {
        Ok(args) => execute(&args).emit(),
        Err(code) => code,
    }
}

/// [`run`] without printing: what it would print and its exit status.
pub fn capture(args: &[String]) -> Captured {
    match parse_args_captured("ldirectord save", "save", args) {
        Ok(args) => execute(&args),
        Err(captured) => captured,
    }
}

fn execute(args: &SaveArgs) -> Captured {
    let fetched = with_kernel(async |client: &mut IpvsClient| {
        let info = client.info().await?;
        Ok((info, client.table().await?))
    });
    let (info, table) = match fetched.map_err(|e| e.context("reading the table")) {
        Ok(t) => t,
        Err(e) => return Captured::failed(exit::FAILURE, format!("ldirectord save: {e:#}\n")),
    };
    let text = if args.numeric || args.json {
        render(args, &info, &table, &mut Numeric)
    } else {
        render(args, &info, &table, &mut SystemNames::load())
    };
    Captured::printed(text)
}
