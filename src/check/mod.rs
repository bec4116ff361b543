//! Health checks: one file per service, all concurrent, each inside its own deadline.
