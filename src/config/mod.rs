//! The `ldirectord.cf` language: pest grammar (`grammar/ldirectord.pest`) → typed model
//! ([`model`]) with the Perl defaults filled in → validation with located diagnostics.
//!
//! `load(path)` is the entry point; [`Host`] abstracts name resolution so tests never use DNS.

pub mod directives;
mod error;
mod fast;
mod load;
pub mod model;
mod read;
mod render;
mod resolve;
mod syntax;

pub use error::{ConfigError, Diagnostic, MAX_ERRORS, Report, Severity};
pub use load::{
    Loaded, MAX_FILE_SIZE, find_config_file, find_config_file_in, load, load_with, parse_bytes,
    parse_str,
};
pub use model::*;
pub use read::{MAX_RANGE, MAX_REALS};
pub use render::render;
pub use resolve::{FakeHost, Host, Services, SystemHost};
#[doc(hidden)]
pub use syntax::structure_matches_grammar;
