//! The `ldirectord.cf` language: pest grammar → typed model → validation.
