//! The kernel's IPVS table over generic netlink: sans-IO codec, client, in-memory kernel.
