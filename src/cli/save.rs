//! `ldirectord save [-n] [--json]`: the kernel's IPVS table as `ipvsadm -S` prints it
//! (input for `ipvsadm -R`), read over netlink. `--json` prints the configuration part of
//! the documented JSON form (docs/json-schema.md): no counters.

use std::process::ExitCode;

use clap::Parser;

use super::exit;
use super::list::{parse_args, print_or_fail, to_json, with_kernel};
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
    let args: SaveArgs = match parse_args("ldirectord save", "save", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let fetched = with_kernel(async |client: &mut IpvsClient| {
        let info = client.info().await?;
        Ok((info, client.table().await?))
    });
    let (info, table) = match fetched.map_err(|e| e.context("reading the table")) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ldirectord save: {e:#}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let text = if args.numeric || args.json {
        render(&args, &info, &table, &mut Numeric)
    } else {
        render(&args, &info, &table, &mut SystemNames::load())
    };
    print_or_fail(&text)
}
