//! Randomness for jitter, DNS ids, SIP Call-IDs, ICMP payloads and RADIUS authenticators.
//!
//! Taken from the OS (`getrandom`). If the OS source fails, which it does not on Linux after
//! boot, a hash of the clock keeps jitter and ids varied; nothing here is a long-term secret
//! (the RADIUS Request Authenticator only needs to be unpredictable per request).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

pub fn fill(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    for chunk in buf.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        let bytes = h.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

pub fn u16() -> u16 {
    let mut b = [0u8; 2];
    fill(&mut b);
    u16::from_le_bytes(b)
}

pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}

/// Uniform in `0..n` (n > 0); the modulo bias is irrelevant for jitter.
pub fn below(n: u64) -> u64 {
    if n == 0 { 0 } else { u64() % n }
}
